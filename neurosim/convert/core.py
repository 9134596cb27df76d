"""ANN -> SpikingNetwork: data-based normalisation, scale bookkeeping across branches, IR assembly.

Method (rate coding with IF neurons and reset by subtraction)
--------------------------------------------------------------
Every activation ``a = act(z)`` becomes a population of IF neurons with threshold 1, reset by
subtraction and initial membrane ``v_init`` (default 1/2). Its spike rate ``r`` represents
``a ~= lambda * r`` where ``lambda`` is the activation's scale: the ``p``-th percentile (or max) of ``a``
over the calibration data, per channel (default; Kim et al., "Spiking-YOLO", AAAI 2020) or per
layer (Diehl et al., IJCNN 2015; Rueckauer et al., Front. Neurosci. 2017, who introduced the 99.9th
percentile), or the learned threshold of a QCFS
activation (Bu et al., ICLR 2022), which needs no calibration.

Each tensor of the ANN carries a scale ``sigma`` (``a ~= sigma * signal``): 1 for a direct-encoded
input (``max_value`` for Poisson), ``lambda`` for spikes, and for the current of a Linear/Conv2d the
scale ``tau`` of whatever it feeds (the activation's ``lambda`` through any average pooling,
flatten or residual add; 1 at the readout, so the output is in the ANN's logit units). A layer then
gets ``W' = W * sigma_in / tau_out`` (per input and output channel) and ``b' = b / tau_out``; a
residual Add gets weight ``sigma_k / tau_add`` on each input, which aligns the shortcut's scale with
the branch's. Biases are injected every step as constant currents, and ``v_init = 1/2`` turns the
IF neuron's floor quantisation into rounding, so the rate is an unbiased estimate of the clipped
activation (Bu et al. 2022, Theorem 2; Rueckauer et al. 2017, Sect. 2.2). Max-pooling is
:class:`~neurosim.ir.SpikeMaxPool2d` on spikes (count-gated, exact in rates); average pooling is linear.

Low-latency options (few timesteps, deep or residual networks)
----------------------------------------------------------------
At small ``T`` the rate code breaks down where inputs arrive unevenly: every population starts at
``v_init`` and fires in step 1 wherever its activation is at least half its scale, so the first
steps carry synchronised bursts that overshoot the next layers, and an IF neuron cannot take back a
spike emitted too early. The error compounds with depth (a QCFS ResNet on MNIST: 11 % at T=4).

* ``signed=True``: signed IF neurons (Wang et al., "Signed neuron with memory: towards simple,
  accurate and high-efficient ANN-SNN conversion", IJCAI 2022): a neuron whose membrane falls below
  0 while its net count is positive emits a -1 spike (:class:`~neurosim.ir.Neurons` ``signed``), so
  its count tracks the rounded integral of its input instead of its running maximum.
* ``calibrate=T``: layer-wise bias calibration for a given ``T`` (the "light calibration" of Li et
  al., "A free lunch from ANN: towards efficient, accurate spiking neural networks calibration",
  ICML 2021): population by population in network order, the SNN is run for ``T`` steps on the
  calibration inputs and each channel's mean rate is pulled to the ANN's mean activation (divided
  by its scale) by adding the difference to the neurons' bias current. Corrects the systematic
  part of the error at that ``T``; the network is then specific to ``T`` (``metadata["calibrated_T"]``).
"""
from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neurosim.convert.graph import AnnGraph, Op, extract
from neurosim.errors import NeurosimError
from neurosim.ir import (INPUT, Add, AvgPool2d, Conv2d, Encoding, Flatten, Linear, Neurons, Readout,
                         SpikeMaxPool2d, SpikingNetwork)

__all__ = ["convert", "ConversionOptions", "parse_norm"]


@dataclass
class ConversionOptions:
    """Options of :func:`convert` (see its docstring)."""

    norm: str = "p99.9"
    per_channel: bool = True
    v_init: float = 0.5
    encoding: str = "direct"
    max_value: float = 1.0
    readout: str = "membrane"
    calibration_samples: int = 1000
    calibration_batch: int = 256
    signed: bool = False


def parse_norm(norm: str) -> float:
    """``"max"`` -> 100, ``"p99.9"`` / ``"99.9"`` -> 99.9; anything else raises."""
    s = str(norm).strip().lower()
    if s == "max":
        return 100.0
    m = re.fullmatch(r"p?(\d+(?:\.\d+)?)", s)
    if not m or not 0 < float(m.group(1)) <= 100:
        raise NeurosimError(f"unknown normalisation {norm!r}; use 'max' or a percentile like 'p99.9' (0 < p <= 100)")
    return float(m.group(1))


def _batches(calibration_data, limit: int, batch: int):
    """Yield input tensors from a tensor/array, a (x, y) pair, a Dataset or an iterable of batches.

    Refuses NaN/inf inputs and data that is one constant value throughout (all zeros, say): scales measured
    on it say nothing about real inputs (an all-zero set gave 13.6 % against the ANN's 43.9 %, silently)."""
    first, varied = None, False
    for b in _raw_batches(calibration_data, limit, batch):
        if not torch.isfinite(b).all():
            raise NeurosimError("calibration data holds NaN or inf values; pass finite training inputs")
        if b.numel():
            if first is None:
                first = b.reshape(-1)[0]
            varied = varied or bool((b != first).any())
        yield b
    if first is not None and not varied:
        raise NeurosimError(f"calibration data is one constant value ({float(first):g}) throughout: activation "
                            "scales measured on it are meaningless; pass real training inputs")


def _raw_batches(calibration_data, limit: int, batch: int):
    if hasattr(calibration_data, "x") and torch.is_tensor(getattr(calibration_data, "x")):
        calibration_data = calibration_data.x
    if isinstance(calibration_data, (tuple, list)) and len(calibration_data) == 2 and \
            torch.is_tensor(calibration_data[0]) and torch.is_tensor(calibration_data[1]) and \
            calibration_data[0].shape[0] == calibration_data[1].shape[0]:
        calibration_data = calibration_data[0]
    if isinstance(calibration_data, np.ndarray):
        calibration_data = torch.from_numpy(calibration_data)
    if torch.is_tensor(calibration_data):
        x = calibration_data[:limit].float()
        for s in range(0, len(x), batch):
            yield x[s:s + batch]
        return
    seen = 0
    for b in calibration_data:
        if isinstance(b, (tuple, list)):
            b = b[0]
        b = torch.as_tensor(b).float()
        b = b[: limit - seen]
        seen += len(b)
        yield b
        if seen >= limit:
            return


def _percentile(x: torch.Tensor, q: float, dim_channel: bool) -> np.ndarray:
    """``q``-th percentile of ``x`` [N, C, ...] over everything (scalar) or per channel ([C])."""
    if not dim_channel:
        flat = x.reshape(-1)
        if flat.numel() > 4_000_000:  # exact enough, and bounded memory/time
            idx = torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0))[:4_000_000]
            flat = flat[idx]
        return np.asarray(np.percentile(flat.double().numpy(), q), np.float64)
    per = x.transpose(0, 1).reshape(x.shape[1], -1).double().numpy()
    return np.percentile(per, q, axis=1)


def _layerwise_only(g: AnnGraph) -> set[str]:
    """Activations that must have one scale: a 1-D activation not fed directly by a Linear (a conv
    output flattened into it would need a per-position conv scale) and the spike-count output."""
    out = set()
    for k, o in g.ops.items():
        if o.kind != "act":
            continue
        src = g.ops[o.inputs[0]]
        if len(o.shape) == 1 and not (src.kind == "linear" and not src.is_conv):
            out.add(k)
        if k == g.output:
            out.add(k)
    return out


def _calibrate(g: AnnGraph, data, opts: ConversionOptions) -> dict[str, np.ndarray]:
    """lambda per activation op: QCFS threshold, or a percentile of its output on ``data``."""
    layerwise = _layerwise_only(g)
    q = parse_norm(opts.norm)
    acts = [k for k, o in g.ops.items() if o.kind == "act"]
    lam: dict[str, np.ndarray] = {}
    need = {k for k in acts if g.ops[k].act != "qcfs"}
    for k in acts:
        if g.ops[k].act == "qcfs":
            lam[k] = np.asarray(g.ops[k].clip, np.float64)
    if need:
        rec: dict[str, list] = {k: [] for k in need}
        n = 0
        with torch.no_grad():
            for xb in _batches(data, opts.calibration_samples, opts.calibration_batch):
                _, r = g.forward(xb, record=need)
                for k in need:
                    rec[k].append(r[k])
                n += len(xb)
        if n == 0:
            raise NeurosimError("calibration_data is empty; pass a few hundred training inputs")
        for k in need:
            a = torch.cat(rec[k])
            per_ch = opts.per_channel and k not in layerwise and a.dim() >= 2
            v = _percentile(a, q, per_ch)
            layer = float(_percentile(a, q, False))
            if layer <= 0:  # a dead layer: any positive scale represents all-zero activity
                layer = float(a.max()) if float(a.max()) > 0 else 1.0
            v = np.where(v > 0, v, layer) if per_ch else np.asarray(layer)
            clip = g.ops[k].clip
            if clip is not None:
                v = np.minimum(v, clip)
            lam[k] = v
    return lam


def _chan(v, ndim: int) -> np.ndarray:
    """A scale (scalar, [C] or already shaped) as an array broadcastable over [C, H, W] (ndim 3) or [N]."""
    v = np.asarray(v, np.float64)
    if v.ndim == 0:
        return v
    if ndim == 3 and v.ndim == 1:
        return v.reshape(-1, 1, 1)
    return v


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    try:
        return bool(np.allclose(np.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape)),
                                np.broadcast_to(b, np.broadcast_shapes(a.shape, b.shape)), rtol=1e-6, atol=0))
    except ValueError:
        return False


def _targets(g: AnnGraph, lam: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """tau for every op whose value is a current: the scale of what it feeds (module docstring)."""
    tau: dict[str, np.ndarray] = {}
    for k in reversed(list(g.ops)):
        o = g.ops[k]
        if o.kind in ("act", "input", "maxpool"):
            continue
        want = []
        for u in g.consumers(k):
            uo = g.ops[u]
            if uo.kind == "act":
                want.append(_chan(lam[u], len(o.shape)))
            elif uo.kind in ("add", "avgpool"):
                want.append(tau[u])
            elif uo.kind == "flatten":
                t = tau[u]
                want.append(t if t.ndim == 0 else t.reshape(o.shape))
            else:  # Linear/Conv2d reading a current: any scale works; 1 keeps it in ANN units
                want.append(np.asarray(1.0))
        if k == g.output:
            want.append(np.asarray(1.0))
        if not want:
            want = [np.asarray(1.0)]
        t = want[0]
        for w in want[1:]:
            if not _same(t, w):
                raise NeurosimError(f"'{o.where}' ({o.kind}) feeds several layers that need different scales "
                                    f"({[*g.consumers(k)]}); insert an activation after it or use per_channel=False")
        if o.kind == "linear" and o.is_conv and t.ndim == 3 and (t.shape[1] != 1 or t.shape[2] != 1):
            raise NeurosimError(f"'{o.where}' (Conv2d) would need a per-position scale (its output is flattened "
                                f"into a per-feature normalised activation); use per_channel=False")
        tau[k] = t
    return tau


def convert(module: nn.Module, calibration_data=None, *, norm: str = "p99.9", per_channel: bool = True,
            v_init: float = 0.5, encoding: str = "direct", max_value: float = 1.0, readout: str = "membrane",
            calibration_samples: int = 1000, example_input: torch.Tensor | None = None, signed: bool = False,
            calibrate: int | None = None, calibration_iters: int = 1, attention_spikes: bool = True) -> SpikingNetwork:
    """Convert a trained ANN into a :class:`~neurosim.ir.SpikingNetwork` (rate-coded IF neurons).

    ``module``: any ``nn.Module`` torch.fx can trace whose layers are in
    :data:`neurosim.convert.graph.SUPPORTED` (it is not modified; BatchNorm uses running stats).
    ``calibration_data``: training inputs [N, ...] (tensor, array, ``(x, y)``, a Dataset or a
    DataLoader); up to ``calibration_samples`` are used to measure activation scales. It may be
    ``None`` only when every activation is QCFS (then pass ``example_input`` for the shapes).
    ``norm``: ``"max"`` or a percentile ``"p99.9"`` (default; Rueckauer et al. 2017) of each
    activation. ``per_channel`` (default): one scale per channel (per feature after a Linear; Kim et
    al., AAAI 2020), else one per layer. It matters for deep nets: a channel whose activations are
    small next to its layer's largest fires rarely under a layer scale and needs many steps to be
    resolved (resnet_tiny on MNIST-5k: 73 % under per-layer vs 96 % per-channel at T=32). It costs
    nothing on any backend: scales fold into the weights and every threshold stays 1. ``v_init``: initial
    membrane as a fraction of the threshold (1/2 makes rates unbiased; 0 is the classic choice).
    ``encoding``: ``"direct"`` or ``"poisson"`` (inputs scaled by ``max_value``). ``readout``:
    ``"membrane"`` (integrate the last layer's current; default) or ``"spike_count"`` (an IF output
    layer, scaled by the output's calibrated maximum).
    ``signed``: signed IF neurons; ``calibrate``: a timestep count ``T`` to calibrate the neuron
    biases for (needs ``calibration_data``), ``calibration_iters`` passes per population; see the
    module docstring ("Low-latency options").

    A Transformer (LayerNorm, attention, embeddings, token-wise layers: ViT, BERT, GPT) goes through
    :func:`neurosim.convert.transformer.convert_transformer` (its docstring maps every op);
    ``attention_spikes`` (default) makes the operands of every product of two streams spike trains.
    """
    opts = ConversionOptions(norm, per_channel, v_init, encoding, max_value, readout, calibration_samples,
                             signed=bool(signed))
    if calibrate is not None:
        if isinstance(calibrate, bool) or not isinstance(calibrate, (int, np.integer)) or calibrate < 1:
            raise NeurosimError(f"calibrate takes a positive number of timesteps T, got {calibrate!r}")
        if calibration_data is None:
            raise NeurosimError("calibrate needs calibration_data (training inputs)")
        if isinstance(calibration_iters, bool) or not isinstance(calibration_iters, (int, np.integer)) \
                or calibration_iters < 1:
            raise NeurosimError(f"calibration_iters takes a positive integer, got {calibration_iters!r}")
    parse_norm(norm)
    Encoding(encoding, max_value)  # validates
    if readout not in ("membrane", "spike_count"):
        raise NeurosimError(f"unknown readout {readout!r}; valid: membrane, spike_count")
    if not 0.0 <= v_init < 1.0:
        raise NeurosimError(f"v_init is a fraction of the threshold in [0, 1), got {v_init}")
    if not isinstance(module, nn.Module):
        raise NeurosimError(f"convert needs a torch.nn.Module, got {type(module).__name__}")
    if example_input is None:
        if calibration_data is None:
            raise NeurosimError("pass calibration_data (training inputs), or example_input for a QCFS-only model")
        example_input = next(iter(_batches(calibration_data, 1, 1)))
    model = copy.deepcopy(module).eval()
    from neurosim.convert.transformer import convert_transformer, is_transformer

    if is_transformer(model):
        odd = [f"{k}={v!r}" for k, v, default in (("encoding", encoding, "direct"), ("readout", readout, "membrane"),
                                                  ("calibrate", calibrate, None))
               if v != default]
        if odd:
            raise NeurosimError(f"Transformer conversion does not take {', '.join(odd)} (direct input, membrane "
                                "readout, one scale per population)")
        return convert_transformer(model, calibration_data, example_input, norm=norm, v_init=v_init,
                                   calibration_samples=min(calibration_samples, 512), signed=bool(signed),
                                   attention_spikes=bool(attention_spikes))
    g = extract(model, example_input.float())
    acts = [o for o in g.ops.values() if o.kind == "act"]
    if calibration_data is None and any(o.act != "qcfs" for o in acts):
        raise NeurosimError("calibration_data is needed to normalise the ReLU activations")
    if readout == "spike_count" and g.ops[g.output].kind != "act":
        if calibration_data is None:
            raise NeurosimError("readout='spike_count' turns the logits into spiking neurons whose threshold "
                                "comes from calibration: pass calibration_data, or use readout='membrane'")
        # an IF output layer: calibrate the logits like an activation
        out = g.ops[g.output]
        name = f"{g.output}_spikes"
        g.ops[name] = Op(name, "act", [g.output], out.shape, name, act="relu")
        g.output = name
    lam = _calibrate(g, calibration_data, opts) if any(o.act != "qcfs" for o in g.ops.values() if o.kind == "act") \
        else {k: np.asarray(o.clip, np.float64) for k, o in g.ops.items() if o.kind == "act"}
    net, name_of = _build(g, lam, opts)
    cal_report = None
    if calibrate is not None:
        cal_report = _calibrate_biases(net, g, lam, name_of, calibration_data, opts, int(calibrate),
                                       int(calibration_iters))
    net.metadata.update({
        "source": type(module).__name__,
        "model": getattr(module, "neurosim_config", None),
        "method": "rate coding, IF neurons, reset by subtraction, data-based normalisation"
                  + (", signed neurons" if signed else "")
                  + (f", bias calibration at T={calibrate}" if calibrate is not None else ""),
        "signed": bool(signed), "calibrated_T": None if calibrate is None else int(calibrate),
        **({"calibration_rate_error": cal_report} if cal_report is not None else {}),
        "norm": "qcfs-threshold" if acts and all(o.act == "qcfs" for o in acts) else norm,
        "per_channel": per_channel, "v_init": v_init,
        "scales": {k: np.asarray(v).round(6).tolist() for k, v in lam.items()},
        "folded_batchnorm": [o.folded_bn for o in g.ops.values() if o.folded_bn],
        "dropped": g.dropped,
    })
    return net


def _conv_in_scale(sig: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """The input scale per conv weight input channel, shaped to broadcast against w [O, I/g, kh, kw]."""
    if sig.ndim == 0:
        return sig
    s = sig.reshape(-1)
    o, ig = w.shape[:2]
    idx = (np.arange(o)[:, None] // (o // groups)) * ig + np.arange(ig)[None, :]
    return s[idx][:, :, None, None]


def _build(g: AnnGraph, lam: dict[str, np.ndarray], opts: ConversionOptions) -> SpikingNetwork:
    tau = _targets(g, lam)
    in_scale = opts.max_value if opts.encoding == "poisson" else 1.0
    sigma: dict[str, np.ndarray] = {}
    spiking: set[str] = set()  # ops whose SNN value is a spike train
    nodes: dict = {}
    name_of: dict[str, str] = {}  # ANN op -> IR node carrying its value
    used = {INPUT}

    def uniq(base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", base) or "node"
        if base in ("output", "readout"):
            base = f"{base}_"
        k, i = base, 1
        while k in used:
            i += 1
            k = f"{base}_{i}"
        used.add(k)
        return k

    for k, o in g.ops.items():
        if o.kind == "input":
            sigma[k] = np.asarray(in_scale)
            name_of[k] = INPUT
            if opts.encoding == "poisson":
                spiking.add(k)
            continue
        ins = [name_of[i] for i in o.inputs]
        if o.kind == "linear":
            w = o.weight.detach().double().numpy()
            b = None if o.bias is None else o.bias.detach().double().numpy()
            s_in, t_out = sigma[o.inputs[0]], tau[k]
            t_vec = np.broadcast_to(t_out.reshape(-1) if t_out.ndim else t_out, (w.shape[0],))
            if o.is_conv:
                w = w * _conv_in_scale(s_in, w, o.conv["groups"]) / t_vec[:, None, None, None]
                node = Conv2d(tuple(ins), weight=w, bias=None if b is None else b / t_vec, **o.conv)
            else:
                s = s_in.reshape(-1) if s_in.ndim else s_in
                w = w * s[None, :] / t_vec[:, None] if np.ndim(s) else w * s / t_vec[:, None]
                node = Linear(tuple(ins), weight=w, bias=None if b is None else b / t_vec)
            nm = uniq(k)
            nodes[nm] = node
            sigma[k] = t_out
        elif o.kind == "act":
            lam_k = _chan(lam[k], len(o.shape))
            src = o.inputs[0]
            cur = ins[0]
            s_in = sigma[src]
            if src in spiking or not _same(s_in, lam_k):
                # the input is not a current at this population's scale: rescale it
                w = np.broadcast_to(s_in / lam_k, np.broadcast_shapes(np.shape(s_in), np.shape(lam_k)))
                sn = uniq(f"{k}_in")
                nodes[sn] = Add((cur,), weights=[np.ascontiguousarray(w, np.float32)])
                cur = sn
            nm = uniq(k)
            nodes[nm] = Neurons((cur,), shape=o.shape, threshold=1.0, leak=1.0, reset="subtract",
                                v_init=opts.v_init, signed=opts.signed)
            sigma[k] = lam_k
            spiking.add(k)
        elif o.kind == "maxpool":
            src = o.inputs[0]
            if src not in spiking:
                raise NeurosimError(f"max-pooling '{o.where}' reads '{g.ops[src].where}' ({g.ops[src].kind}), "
                                    f"not an activation; the spiking max-pool needs spikes (put a ReLU before it)")
            s_in = sigma[src]
            if np.ndim(s_in) == 3 and (s_in.shape[1] != 1 or s_in.shape[2] != 1):
                raise NeurosimError(f"max-pooling '{o.where}' reads a per-position scale; use per_channel=False")
            nm = uniq(k)
            nodes[nm] = SpikeMaxPool2d(tuple(ins), **o.pool)
            sigma[k] = s_in
            spiking.add(k)
        elif o.kind == "avgpool":
            nm = uniq(k)
            nodes[nm] = AvgPool2d(tuple(ins), **o.pool)
            sigma[k] = sigma[o.inputs[0]]
        elif o.kind == "flatten":
            nm = uniq(k)
            nodes[nm] = Flatten(tuple(ins))
            s = sigma[o.inputs[0]]
            in_shape = g.ops[o.inputs[0]].shape
            sigma[k] = s if s.ndim == 0 else np.broadcast_to(s, in_shape).reshape(-1)
            if o.inputs[0] in spiking:
                spiking.add(k)
        elif o.kind == "add":
            t = tau[k]
            ws = []
            for i in o.inputs:
                w = sigma[i] / t
                ws.append(np.float32(1.0) if _same(w, 1.0) else np.asarray(w, np.float32))
            nm = uniq(k)
            nodes[nm] = Add(tuple(ins), weights=ws)
            sigma[k] = t
        else:  # pragma: no cover
            raise AssertionError(o.kind)
        name_of[k] = nm
    out = g.output
    out_node = name_of[out]
    if g.ops[out].kind == "act":
        s = np.asarray(sigma[out])
        scale = float(s.max()) if s.ndim else float(s)
        if s.ndim and not _same(s, scale):
            raise NeurosimError("spike_count readout needs one scale for the output layer; use per_channel=False")
        ro = Readout(out_node, "spike_count", scale)
    else:
        if not _same(sigma[out], 1.0):
            sn = uniq("readout_scale")
            nodes[sn] = Add((out_node,), weights=[np.asarray(sigma[out], np.float32)])
            out_node = sn
        ro = Readout(out_node, "membrane", 1.0)
    enc = Encoding(opts.encoding, opts.max_value)
    return SpikingNetwork(input_shape=g.input_shape, nodes=nodes, readout=ro, encoding=enc), name_of


def _calibrate_biases(net: SpikingNetwork, g: AnnGraph, lam: dict[str, np.ndarray], name_of: dict[str, str],
                      data, opts: ConversionOptions, T: int, iters: int) -> dict[str, dict]:
    """Layer-wise bias calibration for ``T`` steps in one pass (:mod:`neurosim.convert.calibration`):
    replaces ``net``'s Neurons nodes with recalibrated ones; returns the per-population rate errors."""
    from neurosim.convert.calibration import calibrate, calibration_images, channel_axes

    acts = [k for k, o in g.ops.items() if o.kind == "act"]
    n = calibration_images(net, T, min(opts.calibration_samples, 512))
    xs, sums, count = [], {k: 0.0 for k in acts}, 0
    with torch.no_grad():
        for xb in _batches(data, n, opts.calibration_batch):
            _, r = g.forward(xb, record=set(acts))
            xs.append(xb)
            count += len(xb)
            for k in acts:
                a = r[k].double().numpy()
                rate = np.clip(a / _chan(lam[k], a.ndim - 1), 0.0, 1.0)  # what the population's rate should be
                axes = channel_axes(a.ndim)
                sums[k] = sums[k] + rate.mean(axis=axes) * len(xb)
    want = {name_of[k]: sums[k] / count for k in acts}
    return calibrate(net, torch.cat(xs), want, T, iters)
