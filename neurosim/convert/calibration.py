"""One-pass layer-wise bias calibration of a converted network for a given number of timesteps T.

Method (the "light calibration" of Li, Deng, Dong, Gong & Gu, "A free lunch from ANN: towards
efficient, accurate spiking neural networks calibration", ICML 2021, run layer by layer in one pass)
--------------------------------------------------------------------------------------------------------
The converted SNN is simulated on the calibration inputs one node at a time for all ``T`` steps at
once (the snntorch backend's layer mode: a synaptic node is one [T*batch] GEMM/conv, a population one
fused pass over its neurons). When the walk reaches a population ``k`` that stands for an ANN
activation ``a_k`` with scale ``lambda_k``, its input currents are already those of the calibrated
network upstream, so the population is corrected before anything downstream sees it:

    r_want[c] = mean over samples and positions of clip(a_k / lambda_k, 0, 1)      (the ANN, channel c)
    r_got[c]  = mean of the population's net spike count / T                        (the SNN, channel c)
    bias[c]  += (r_want[c] - r_got[c]) * threshold

(``iters`` times, re-running only this population between corrections), and then the walk moves on
with the corrected spikes. A bias current ``b`` injected every step adds ``b T`` to the membrane over
the run, so the correction moves the channel's mean count by about ``(r_want - r_got) T`` spikes: the
systematic part of the conversion error at this ``T`` (Li et al.'s "bias calibration"; the unevenness
error of Bu et al., ICLR 2022, Sect. 4, is its residual-network case).

Cost: the whole network is simulated once (plus ``iters`` extra runs of each population's neuron
update, cheap next to its synapses), against once per population for the prefix-by-prefix
calibration it replaces (7 prefix runs for ``resnet_tiny``). Measured on the QCFS ``resnet_tiny``
(seed 0, 512 calibration images, one torch thread, CPU seconds of ``neurosim.convert``): 7.98 s
against 22.25 s at T=4 (2.8x), 53.3 s against 180.1 s for T = 1, 2, 4, 8, 16 together, with the same
test accuracy at every T. The floor is the one pass itself: at T=4 its convolutions over 4 x 512
spike maps are 3 of the 8 s.
A layer's [T, N, ...] spike tensor for all N calibration images is held in memory, so at large ``T``
fewer images are used (:func:`calibration_images`).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.errors import NeurosimError
from neurosim.ir import (INPUT, Add, AvgPool2d, Conv2d, Flatten, Linear, Neurons, SpikeMaxPool2d, SpikingNetwork,
                         SumPool2d)

#: elements of one layer's [T, N, *shape] tensor calibration may hold (float32: 400 MiB)
MAX_ELEMENTS = 100_000_000


def calibration_images(net: SpikingNetwork, T: int, limit: int) -> int:
    """How many of ``limit`` calibration images one pass at ``T`` uses: all of them while the largest
    population's [T, N, *shape] spikes fit :data:`MAX_ELEMENTS`, never fewer than 64."""
    largest = max([p.size for p in net.populations.values()] + [1])
    return int(max(min(limit, 64), min(limit, MAX_ELEMENTS // (T * largest))))


def channel_axes(ndim: int):
    """Axes to average a [N, C, H, W] or [N, F] tensor over to get one value per channel/feature."""
    return (0, 2, 3) if ndim == 4 else 0


_KERNEL = None


def _kernel():
    """The neuron update as one numba pass per neuron over all T (compiled on first use, cached)."""
    global _KERNEL
    if _KERNEL is None:
        from numba import njit

        @njit(cache=True)
        def run(cur, thr, bias, v0, leak, subtract, v_reset, signed, out):
            T, N = out.shape
            const = cur.shape[0] == 1
            for i in range(N):
                v, th, b = v0[i], thr[i], bias[i]
                s = 0.0  # the previous step's spike: -1, 0 or 1
                net = 0.0
                for t in range(T):
                    x = (cur[0, i] if const else cur[t, i]) + b
                    if subtract:
                        v = (v + x - s * th) if leak == 1.0 else leak * (v - s * th) + x
                    else:
                        if s != 0.0:
                            v = v_reset
                        v = (v + x) if leak == 1.0 else leak * v + x
                    if v > th:
                        s = 1.0
                    elif signed and v < 0.0 and net > 0.0:
                        s = -1.0
                    else:
                        s = 0.0
                    net += s
                    out[t, i] = s

        _KERNEL = run
    return _KERNEL


def population(n: Neurons, cur: torch.Tensor, T: int) -> torch.Tensor:
    """The IR's neuron update (:mod:`neurosim.ir`'s step semantics: ``v <- leak v + I + bias``, spike if
    ``v > threshold``, reset, a -1 spike for a signed neuron below 0 with a positive net count) for all
    ``T`` steps of currents ``cur`` [T or 1, B, *shape] (one row: the same every step); returns the
    spikes [T, B, *shape] (-1/0/1, float32)."""
    B = cur.shape[1]
    full = lambda a: np.ascontiguousarray(  # noqa: E731 - per neuron, for every sample
        np.broadcast_to(np.asarray(a, np.float32), (B, *n.shape)).reshape(-1))
    c = np.ascontiguousarray(cur.reshape(cur.shape[0], -1).numpy(), np.float32)
    out = np.empty((T, c.shape[1]), np.float32)
    _kernel()(c, full(n.threshold), full(n.bias), full(n.v_init), np.float32(n.leak), n.reset == "subtract",
              np.float32(n.v_reset), bool(n.signed), out)
    return torch.from_numpy(out).view(T, B, *n.shape)


def _stateless(n, xs: list[torch.Tensor]) -> torch.Tensor:
    """A synaptic or structural node applied to [N, *shape] tensors (the IR's definitions)."""
    x = xs[0]
    if isinstance(n, Linear):
        return F.linear(x, _t(n.weight), None if n.bias is None else _t(n.bias))
    if isinstance(n, Conv2d):
        return F.conv2d(x, _t(n.weight), None if n.bias is None else _t(n.bias), n.stride, n.padding, n.dilation,
                        n.groups)
    if isinstance(n, AvgPool2d):
        return F.avg_pool2d(x, n.kernel_size, n.stride, n.padding, count_include_pad=True)
    if isinstance(n, SumPool2d):
        return F.avg_pool2d(x, n.kernel_size, n.stride, n.padding, count_include_pad=True, divisor_override=1)
    if isinstance(n, Flatten):
        return x.flatten(1)
    out = None
    for xi, w in zip(xs, n.weights):  # Add: per-input (per-channel) weights
        y = xi * _t(w)
        out = y if out is None else out + y
    return out


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, np.float32))


def calibrate(net: SpikingNetwork, x: torch.Tensor, want: dict[str, np.ndarray], T: int, iters: int = 1,
              seed: int = 0) -> dict[str, dict]:
    """Calibrate the biases of ``net``'s populations named in ``want`` for ``T`` steps, in one pass.

    ``x`` [N, *input_shape]: calibration inputs. ``want[k]``: the mean rate (net spikes per step) each
    channel (conv population) or feature (1-D population) of population ``k`` should have.
    Replaces those :class:`~neurosim.ir.Neurons` nodes of ``net`` (``net.nodes[k]``) with recalibrated
    copies. Returns, per calibrated population, the mean absolute rate error over its channels before
    and after (``{"before": ..., "after": ...}``).
    """
    from neurosim.encoding import encode

    if T < 1 or iters < 1:
        raise NeurosimError(f"calibration needs T >= 1 and iters >= 1, got T={T}, iters={iters}")
    unknown = set(want) - set(net.populations)
    if unknown:
        raise NeurosimError(f"calibration targets name no population of the network: {sorted(unknown)}")
    dtype = torch.float32
    report: dict[str, dict] = {}
    with torch.no_grad():
        xb = torch.as_tensor(x).to(dtype)
        B = xb.shape[0]
        e, const = encode(net.encoding, xb, T, generator=torch.Generator().manual_seed(int(seed)))
        vals: dict[str, tuple[torch.Tensor, bool]] = {INPUT: (e.to(dtype), const)}
        remaining = {k: len(net.consumers(k)) for k in [INPUT, *net.nodes]}
        for k, n in list(net.nodes.items()):
            ins = [vals[i] for i in n.inputs]
            if isinstance(n, Neurons):
                cur = ins[0][0]
                out = population(n, cur, T)
                if k in want:
                    target = np.asarray(want[k], np.float64).reshape(-1)
                    axes = channel_axes(out.ndim - 1)
                    thr = float(np.asarray(n.threshold, np.float64).reshape(-1)[0])
                    for i in range(iters + 1):
                        got = (out.sum(0).double().mean(dim=axes)).numpy() / T
                        err = target - got.reshape(-1)
                        if i == 0:
                            report[k] = {"before": float(np.abs(err).mean())}
                        if i == iters:
                            break
                        shape = n.shape[:1] + (1,) * (len(n.shape) - 1)
                        bias = np.broadcast_to(n.bias, shape).astype(np.float64)
                        n = dataclasses.replace(n, bias=(bias + (err * thr).reshape(shape)).astype(np.float32))
                        net.nodes[k] = n  # nodes are immutable: the network gets the new one
                        out = population(n, cur, T)
                    report[k]["after"] = float(np.abs(err).mean())
                vals[k] = (out, False)
            elif isinstance(n, SpikeMaxPool2d):
                c = torch.cumsum(ins[0][0], 0)
                m = F.max_pool2d(c.flatten(0, 1), n.kernel_size, n.stride, n.padding).unflatten(0, (T, B))
                vals[k] = (torch.diff(m, dim=0, prepend=torch.zeros_like(m[:1])), False)
            elif isinstance(n, (Linear, Conv2d, AvgPool2d, SumPool2d, Flatten, Add)):
                c = all(v[1] for v in ins)
                xs = [v if c or not cv else v.expand(T, *v.shape[1:]) for v, cv in ins]
                y = _stateless(n, [t.flatten(0, 1) for t in xs])
                vals[k] = (y.unflatten(0, (xs[0].shape[0], B)), c)
            else:
                raise NeurosimError(f"bias calibration does not take node {k!r} ({n.kind})")
            for i in n.inputs:  # free what no later node reads
                remaining[i] -= 1
                if remaining[i] == 0:
                    vals.pop(i, None)
    return report
