"""Transformer ANN -> SpikingNetwork (issue 13): ViT, BERT, GPT and anything written with the same ops.

:func:`convert_transformer` traces the module with torch.fx, runs the trace once on one example (to
fold every value that does not depend on the input: class token, position embeddings, ``arange``
positions, ``zeros_like`` token types) and on the calibration data (to measure the scales of the
populations it inserts), and emits IR nodes op by op (:mod:`neurosim.ir.nodes`, "Transformer
operators"). Every IR value is in the ANN's units except spike trains, which carry their scale
``lambda`` (folded into the next Linear/TokenLinear, or an Add of weight ``lambda`` where a
graded value is needed).

What becomes what
-----------------
============================================  =================================================================
ANN                                            IR
============================================  =================================================================
``nn.Embedding`` reading the token ids         :class:`~neurosim.ir.Embedding` (the input encoding)
a parameter / a value independent of input     :class:`~neurosim.ir.Constant` (class token, positions)
``nn.Conv2d`` on the image (patch embedding)   :class:`~neurosim.ir.Conv2d` (analog MACs, like a CNN's first layer)
``nn.Linear`` on ``[tokens, features]``        :class:`~neurosim.ir.TokenLinear` (on a vector: Linear)
``flatten``/``view``/``reshape``/``transpose`` :class:`~neurosim.ir.Reshape` / :class:`~neurosim.ir.Transpose`
``split``/``x[:, i]``/``cat``                  :class:`~neurosim.ir.Slice` / :class:`~neurosim.ir.Concat`
``+`` (residual, + constant), ``* c``          :class:`~neurosim.ir.Add` (with a Constant for a constant term)
``nn.LayerNorm`` / ``F.layer_norm``            :class:`~neurosim.ir.LayerNorm` (on accumulated input)
GELU (erf/tanh), SiLU, tanh                    :class:`~neurosim.ir.Activation` (on accumulated input)
ReLU                                           IF neurons at a calibrated scale (rate-coded spikes)
QCFS                                           IF neurons at its learned threshold (QCFS-exact at T = L)
SignedQCFS (``models.qcfs``)                   a +/- pair of IF populations at its threshold (exact at T = L)
``F.scaled_dot_product_attention``             quantiser populations on Q, K, V -> MatMul Q K^T (scale
                                               1/sqrt(d)) -> Softmax (causal when ``is_causal``) ->
                                               quantiser population -> MatMul with V
``torch.matmul`` / ``@``, ``softmax``          quantiser populations on both operands -> MatMul; Softmax
============================================  =================================================================

Quantiser populations (``attention_spikes=True``, the default) make the operands of every product of
two streams spike trains: an unsigned operand (softmax probabilities) is one IF population at scale
``lambda`` (the ``norm`` percentile over the calibration data); a signed operand (Q, K, V) is two,
``x = relu(x) - relu(-x)``, each at the percentile of ``|x|``: ternary values carried on two binary
spike trains. With ``attention_spikes=False`` the products read graded values (exact in time
average, but not spikes). A final softmax is dropped (argmax-preserving); dropout is dropped.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from neurosim.errors import NeurosimError
from neurosim.ir import (INPUT, Activation, Add, Concat, Constant, Conv2d, Embedding, Encoding, LayerNorm, Linear,
                         MatMul, Neurons, Readout, Reshape, Slice, Softmax, SpikingNetwork, TokenLinear, Transpose)

SUPPORTED = ("nn.Embedding (token ids), parameters and input-independent values (constants), nn.Conv2d (patch "
             "embedding), nn.Linear on vectors or [tokens, features], flatten / view / reshape / transpose / "
             "permute / contiguous, split / chunk / x[:, i] / cat / expand (of constants), + (tensors or a "
             "constant), * or / by a number, nn.LayerNorm / F.layer_norm, nn.GELU / F.gelu, nn.SiLU, nn.Tanh, "
             "nn.ReLU / F.relu, QCFS, F.scaled_dot_product_attention (no mask but is_causal), torch.matmul / @, "
             "softmax (last axis), nn.Dropout / nn.Identity, a final softmax")

#: fx targets that make a module a Transformer for :func:`neurosim.convert` (routing to this converter)
_TRANSFORMER_MODULES = (nn.Embedding, nn.LayerNorm, nn.MultiheadAttention)
_TRANSFORMER_FNS = {F.scaled_dot_product_attention, torch.matmul, operator.matmul, F.layer_norm, torch.cat,
                    torch.bmm}
_TRANSFORMER_METHODS = {"transpose", "permute", "split", "chunk", "matmul"}


def is_transformer(module: nn.Module) -> bool:
    """Whether ``module``'s fx trace uses an op only :func:`convert_transformer` handles."""
    try:
        graph = _TfTracer().trace(module)
    except Exception:  # noqa: BLE001 - the CNN path reports tracing errors
        return False
    mods = dict(module.named_modules())
    for n in graph.nodes:
        if n.op == "call_module" and isinstance(mods.get(n.target), _TRANSFORMER_MODULES):
            return True
        if n.op == "call_function" and n.target in _TRANSFORMER_FNS:
            return True
        if n.op == "call_method" and n.target in _TRANSFORMER_METHODS:
            return True
        if n.op == "get_attr":
            return True
    return False


@dataclass
class _V:
    """An IR value: ``node`` carries it in ANN units; or a spike population ``node`` at scale ``lam``."""

    node: str
    shape: tuple[int, ...]
    lam: float | None = None  # spikes of ``node`` times lam are the value
    quantised: bool = False  # a graded value made of spikes already (a signed QCFS pair, reshaped spikes)


class _TfTracer(fx.Tracer):
    """Keeps the quantisers (QCFS, SignedQCFS) as leaves: they convert as a whole."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return getattr(m, "neurosim_activation", None) in ("qcfs", "qcfs_signed") or super().is_leaf_module(m, qualname)


class _Recorder(fx.Interpreter):
    def __init__(self, gm, keep: set[str] | None):
        super().__init__(gm)
        self.keep, self.vals = keep, {}

    def run_node(self, n):
        out = super().run_node(n)
        if self.keep is None or n.name in self.keep:
            self.vals[n.name] = out
        return out


def _where(n: fx.Node, path: str | None = None) -> str:
    ins = [a.name for a in n.all_input_nodes]
    users = [u.name for u in n.users]
    return (f"{repr(path) + ' ' if path else ''}(graph node {n.name!r}, reads {ins or ['nothing']}, "
            f"read by {users or ['nothing']})")


def _unsupported(n: fx.Node, what: str, path: str | None = None, why: str = "") -> NeurosimError:
    return NeurosimError(f"cannot convert {what} at {_where(n, path)}{': ' + why if why else ''}. "
                         f"Supported in Transformers: {SUPPORTED}")


def convert_transformer(module: nn.Module, calibration_data, example: torch.Tensor, *, norm: str = "p99.9",
                        calibration_samples: int = 512, v_init: float = 0.5, attention_spikes: bool = True,
                        signed: bool = False) -> SpikingNetwork:
    """Convert a Transformer (module docstring). ``example``: one input batch (images or token ids).

    ``calibration_data`` may be None only when no population needs a measured scale (QCFS MLPs and
    ``attention_spikes=False``). ``norm``: the percentile (or ``max``) of each inserted population's
    input that becomes its scale. ``signed``: signed IF neurons (take a too-early spike back).
    """
    from neurosim.convert.core import _batches, parse_norm
    from neurosim.convert.graph import _is_qcfs

    q = parse_norm(norm)
    try:
        graph = _TfTracer().trace(module)
    except Exception as e:  # noqa: BLE001
        raise NeurosimError(f"torch.fx cannot trace {type(module).__name__}: {type(e).__name__}: {e}") from e
    gm = fx.GraphModule(module, graph)
    mods = dict(module.named_modules())
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise NeurosimError(f"the module must take exactly one tensor input, its forward takes "
                            f"{[p.name for p in placeholders]}")
    tokens = any(n.op == "call_module" and isinstance(mods.get(n.target), nn.Embedding) and
                 n.args and n.args[0] is placeholders[0] for n in graph.nodes)
    ex = example[:1].long() if tokens else example[:1].float()
    rec = _Recorder(gm, None)
    with torch.no_grad():
        try:
            rec.run(ex)
        except Exception as e:  # noqa: BLE001
            raise NeurosimError(f"cannot run {type(module).__name__} on an example of shape {tuple(example.shape)} "
                                f"({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]})") from None
    one = rec.vals
    # which fx nodes depend on the input (everything else is a constant, folded from ``one``)
    dep: set[str] = set()
    for n in graph.nodes:
        if n.op == "placeholder":
            dep.add(n.name)
        elif n.op == "call_function" and n.target in (torch.zeros_like, torch.ones_like):
            continue  # the values do not depend on the input's values
        elif n.op == "call_method" and n.target == "size" or \
                (n.op == "call_function" and n.target is getattr and n.args[1] in ("shape", "device", "dtype", "ndim")):
            continue
        elif any(a.name in dep for a in n.all_input_nodes):
            dep.add(n.name)
    b = _Builder(q, v_init, signed)
    vals: dict[str, _V] = {}
    consts: dict[tuple, _V] = {}
    sites: list[tuple[str, str, object]] = []  # (fx node, what, callback) for calibration

    def per_sample_const(n_or_val, like: tuple[int, ...] | None = None) -> np.ndarray:
        v = n_or_val if torch.is_tensor(n_or_val) else one[n_or_val.name]
        a = v.detach().double().numpy()
        if like is not None and a.ndim == len(like) + 1:
            if a.shape[0] != 1:
                raise NeurosimError(f"a constant of shape {a.shape} has a batch axis of {a.shape[0]}")
            a = a[0]
        if like is not None:
            a = np.broadcast_to(a, like)
        return np.ascontiguousarray(a)

    def tensor_arg(n: fx.Node, a, like: tuple[int, ...] | None = None) -> _V:
        if not isinstance(a, fx.Node):
            raise _unsupported(n, f"{_name(n)} with a non-tensor argument {a!r}")
        if a.name in vals:
            return vals[a.name]
        if a.name not in dep and torch.is_tensor(one.get(a.name)):
            shape = tuple(one[a.name].shape)
            if like is None:
                like = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape
            key = (a.name, like)
            if key not in consts:
                consts[key] = _V(b.add(f"{a.name}_const", Constant((), value=per_sample_const(a, like))), like)
            return consts[key]
        raise _unsupported(a, f"the value of {a.name!r}", why="it is not produced by a convertible op")

    def shape_of(n: fx.Node) -> tuple[int, ...]:
        return tuple(int(s) for s in one[n.name].shape[1:])

    for n in graph.nodes:
        if n.op == "output":
            a = n.args[0]
            if not isinstance(a, fx.Node) or a.name not in vals:
                raise NeurosimError(f"the module must return one tensor computed from its input, it returns {a!r}")
            out = b.graded(vals[a.name])
            continue
        if n.op == "placeholder":
            vals[n.name] = _V(INPUT, shape_of(n))
            continue
        if n.name not in dep:
            continue  # a constant: folded where it is used
        path = n.target if n.op == "call_module" else None
        m = mods.get(n.target) if n.op == "call_module" else None
        t = n.target
        args, kw = list(n.args), dict(n.kwargs)
        shape = shape_of(n) if torch.is_tensor(one.get(n.name)) else None
        fn_is = lambda *fs: n.op == "call_function" and t in fs  # noqa: E731
        meth_is = lambda *ms: n.op == "call_method" and t in ms  # noqa: E731
        if m is not None and isinstance(m, (nn.Dropout, nn.Identity)) or meth_is("contiguous") or fn_is(F.dropout):
            vals[n.name] = tensor_arg(n, args[0])
        elif isinstance(m, nn.Embedding):
            x = tensor_arg(n, args[0])
            if x.node != INPUT:
                raise _unsupported(n, "nn.Embedding of a computed value", path, "only the token ids are embedded")
            vals[n.name] = _V(b.add(path, Embedding((INPUT,), weight=m.weight.detach().double().numpy())), shape)
            b.tokens = True
        elif isinstance(m, nn.Conv2d):
            x = tensor_arg(n, args[0])
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise _unsupported(n, f"Conv2d with padding {m.padding!r} / {m.padding_mode}", path)
            vals[n.name] = _V(b.add(path, Conv2d((b.graded(x),), weight=m.weight.detach().double().numpy(),
                                                 bias=None if m.bias is None else m.bias.detach().double().numpy(),
                                                 stride=m.stride, padding=m.padding, dilation=m.dilation,
                                                 groups=m.groups)), shape)
        elif isinstance(m, nn.Linear):
            vals[n.name] = b.linear(path, tensor_arg(n, args[0]), m.weight.detach().double().numpy(),
                                    None if m.bias is None else m.bias.detach().double().numpy(), shape)
        elif isinstance(m, nn.LayerNorm) or fn_is(F.layer_norm):
            if m is None:
                p = dict(zip(["input", "normalized_shape", "weight", "bias", "eps"], args), **kw)
                w = p.get("weight")
                bias = p.get("bias")
                nshape, eps = p["normalized_shape"], p.get("eps", 1e-5)
                w = per_sample_const(w) if w is not None else None
                bias = per_sample_const(bias) if bias is not None else None
            else:
                nshape, eps = m.normalized_shape, m.eps
                w = m.weight.detach().double().numpy() if m.weight is not None else None
                bias = m.bias.detach().double().numpy() if m.bias is not None else None
            if len(tuple(nshape)) != 1:
                raise _unsupported(n, f"LayerNorm over {tuple(nshape)}", path, "only the last axis is normalised")
            d = int(tuple(nshape)[0])
            vals[n.name] = _V(b.add(path or n.name, LayerNorm((b.graded(tensor_arg(n, args[0])),),
                                                               weight=np.ones(d) if w is None else w,
                                                               bias=np.zeros(d) if bias is None else bias,
                                                               eps=eps)), shape)
        elif isinstance(m, (nn.GELU, nn.SiLU, nn.Tanh)) or fn_is(F.gelu, F.silu, torch.tanh) or meth_is("tanh"):
            if isinstance(m, nn.GELU) or fn_is(F.gelu):
                approx = m.approximate if m is not None else kw.get("approximate", "none")
                f = "gelu_tanh" if approx == "tanh" else "gelu"
            else:
                f = "silu" if isinstance(m, nn.SiLU) or fn_is(F.silu) else "tanh"
            vals[n.name] = _V(b.add(path or n.name, Activation((b.graded(tensor_arg(n, args[0])),), fn=f)), shape)
        elif isinstance(m, nn.ReLU) or fn_is(F.relu, torch.relu) or meth_is("relu"):
            x = tensor_arg(n, args[0])
            v = b.population(path or n.name, x, shape, lam=None)
            vals[n.name] = v
            sites.append((args[0].name, "relu", v))
        elif m is not None and getattr(m, "neurosim_activation", None) == "qcfs_signed":
            if float(getattr(m, "shift", 0.5)) != 0.5:
                raise _unsupported(n, "SignedQCFS with shift != 0.5", path)
            lam = float(m.threshold.detach())
            x = tensor_arg(n, args[0])
            pos = b.population(f"{path}_pos", x, shape, lam=lam)
            neg = b.population(f"{path}_neg", x, shape, lam=lam, sign=-1.0)
            vals[n.name] = _V(b.add(f"{path}_ternary", Add((pos.node, neg.node), weights=[np.float32(lam),
                                                                                         np.float32(-lam)])),
                              shape, quantised=True)
        elif m is not None and _is_qcfs(m):
            if float(getattr(m, "shift", 0.5)) != 0.5:
                raise _unsupported(n, "QCFS with shift != 0.5", path, "conversion is unbiased only for phi = 1/2")
            vals[n.name] = b.population(path, tensor_arg(n, args[0]), shape, lam=float(m.threshold.detach()))
        elif fn_is(operator.add, operator.iadd, torch.add) or meth_is("add", "add_", "__add__"):
            xs = [a for a in args[:2]]
            if kw.get("alpha", 1) != 1:
                raise _unsupported(n, "add with alpha")
            if not all(isinstance(a, fx.Node) for a in xs):
                raise _unsupported(n, "adding a Python number", why="only tensors (or constant tensors) are added")
            ins = [tensor_arg(n, a, like=shape) for a in xs]
            vals[n.name] = _V(b.add(n.name, Add(tuple(b.graded(v) for v in ins))), shape)
        elif fn_is(operator.mul, operator.truediv, torch.mul) or meth_is("mul", "div"):
            tens = [a for a in args[:2] if isinstance(a, fx.Node)]
            num = [a for a in args[:2] if isinstance(a, (int, float))]
            if len(tens) != 1 or len(num) != 1 or (t is operator.truediv and not isinstance(args[1], (int, float))):
                raise _unsupported(n, f"{_name(n)} of two tensors", why="only scaling by a number converts "
                                   "(products of two tensors: torch.matmul)")
            c = float(num[0]) if t not in (operator.truediv,) and t != "div" else 1.0 / float(num[0])
            vals[n.name] = _V(b.add(n.name, Add((b.graded(tensor_arg(n, tens[0])),), weights=[np.float32(c)])),
                              shape)
        elif fn_is(torch.flatten) or meth_is("flatten", "view", "reshape"):
            x = tensor_arg(n, args[0])
            if shape is None or one[n.name].shape[0] != one[args[0].name].shape[0]:
                raise _unsupported(n, f"{_name(n)} across the batch axis")
            vals[n.name] = x if shape == x.shape else _V(b.add(n.name, Reshape((b.graded(x),), shape=shape)), shape,
                                                         quantised=x.quantised or x.lam is not None)
        elif meth_is("transpose", "permute") or fn_is(torch.transpose, torch.permute):
            x = tensor_arg(n, args[0])
            nd = len(x.shape) + 1
            if t in ("transpose", torch.transpose):
                i, j = (a % nd for a in args[1:3])
                perm = list(range(nd))
                perm[i], perm[j] = perm[j], perm[i]
            else:
                perm = [a % nd for a in (args[1] if isinstance(args[1], (tuple, list)) else args[1:])]
            if perm[0] != 0:
                raise _unsupported(n, f"{_name(n)} that moves the batch axis")
            vals[n.name] = _V(b.add(n.name, Transpose((b.graded(x),), perm=tuple(p - 1 for p in perm[1:]))), shape,
                              quantised=x.quantised or x.lam is not None)
        elif meth_is("expand") or fn_is(torch.Tensor.expand):
            x = tensor_arg(n, args[0])
            if shape != x.shape:
                raise _unsupported(n, "expand of a computed value beyond the batch axis")
            vals[n.name] = x
        elif meth_is("split", "chunk") or fn_is(torch.split, torch.chunk):
            continue  # read through operator.getitem below
        elif fn_is(operator.getitem):
            src, idx = args
            if isinstance(src, fx.Node) and src.op in ("call_method", "call_function") and \
                    src.target in ("split", "chunk", torch.split, torch.chunk):
                x = tensor_arg(n, src.args[0])
                dim = src.args[2] if len(src.args) > 2 else src.kwargs.get("dim", 0)
                ax = dim % (len(x.shape) + 1) - 1
                if ax < 0:
                    raise _unsupported(n, "split along the batch axis")
                sizes = [int(p.shape[ax + 1]) for p in one[src.name]]
                start = sum(sizes[:idx])
                vals[n.name] = _V(b.add(n.name, Slice((b.graded(x),), axis=ax, start=start,
                                                      stop=start + sizes[idx])), shape,
                                  quantised=x.quantised or x.lam is not None)
            else:
                vals[n.name] = _getitem(n, b, tensor_arg(n, src), idx, shape)
        elif fn_is(torch.cat, torch.concat):
            parts = args[0]
            dim = args[1] if len(args) > 1 else kw.get("dim", 0)
            ins = [tensor_arg(n, a) for a in parts]
            ax = dim % (len(shape) + 1) - 1
            if ax < 0:
                raise _unsupported(n, "cat along the batch axis")
            vals[n.name] = _V(b.add(n.name, Concat(tuple(b.graded(v) for v in ins), axis=ax)), shape)
        elif fn_is(F.scaled_dot_product_attention):
            p = dict(zip(["query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale"], args), **kw)
            if p.get("attn_mask") is not None:
                raise _unsupported(n, "scaled_dot_product_attention with attn_mask", why="only is_causal masks")
            qv, kv, vv = (tensor_arg(n, p[k]) for k in ("query", "key", "value"))
            hd = qv.shape[-1]
            scale = p.get("scale") or 1.0 / math.sqrt(hd)
            operands = []
            for role, a, v in zip("qkv", (p["query"], p["key"], p["value"]), (qv, kv, vv)):
                operands.append(b.operand(f"{n.name}_{role}", v, sites, a.name, attention_spikes))
            s = b.add(f"{n.name}_scores", MatMul((operands[0], operands[1]), transpose_b=True, scale=scale))
            sm = b.add(f"{n.name}_softmax", Softmax((s,), causal=bool(p.get("is_causal", False))))
            sh = qv.shape[:-1] + (kv.shape[-2],)
            pv = b.operand(f"{n.name}_probs", _V(sm, sh), sites, (n.name, "probs", p, scale), attention_spikes,
                           unsigned=True)
            vals[n.name] = _V(b.add(n.name, MatMul((pv, operands[2]))), shape)
        elif fn_is(torch.matmul, operator.matmul, torch.bmm) or meth_is("matmul"):
            ins = [tensor_arg(n, a) for a in args[:2]]
            ops_ = [b.operand(f"{n.name}_{a.name}", v, sites, a.name, attention_spikes,
                              unsigned=isinstance(b.nodes.get(v.node), Softmax))  # probabilities: >= 0
                    for a, v in zip(args, ins)]
            vals[n.name] = _V(b.add(n.name, MatMul(tuple(ops_))), shape)
        elif isinstance(m, (nn.Softmax, nn.LogSoftmax)) or fn_is(F.softmax, torch.softmax, F.log_softmax) or \
                meth_is("softmax", "log_softmax"):
            x = tensor_arg(n, args[0])
            dim = m.dim if m is not None else (args[1] if len(args) > 1 else kw.get("dim"))
            final = len(n.users) == 1 and next(iter(n.users)).op == "output"
            if final:
                vals[n.name] = x
                b.dropped.append(f"{n.name} (softmax, argmax-preserving)")
            elif dim is None or dim % (len(x.shape) + 1) != len(x.shape) or isinstance(m, nn.LogSoftmax) or \
                    t in (F.log_softmax, "log_softmax"):
                raise _unsupported(n, _name(n), path, "only a softmax over the last axis converts")
            else:
                vals[n.name] = _V(b.add(n.name, Softmax((b.graded(x),))), shape)
        else:
            what = f"layer {type(m).__name__}" if m is not None else f"function {_name(n)}"
            raise _unsupported(n, what, path)
    # calibration: the scale of every population that needs one
    need = [s for s in sites]
    if need:
        if calibration_data is None:
            raise NeurosimError("calibration_data is needed to measure the scales of the attention operands "
                                "and ReLU populations (or pass attention_spikes=False with a QCFS model)")
        keep = set()
        for name, what, _ in need:
            if what == "probs":
                keep.update([name[2]["query"].name, name[2]["key"].name])
            else:
                keep.add(name)
        got: dict[str, list] = {k: [] for k in keep}
        with torch.no_grad():
            for xb in _batches(calibration_data, calibration_samples, 128):
                r = _Recorder(gm, keep)
                r.run(xb.long() if tokens else xb)
                for k in keep:
                    got[k].append(r.vals[k].detach().double())
        cat = {k: torch.cat(v) for k, v in got.items()}
        for name, what, cb in need:
            if what == "probs":
                _, _, p, scale = name
                s = torch.matmul(cat[p["query"].name], cat[p["key"].name].transpose(-1, -2)) * scale
                if p.get("is_causal"):
                    s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), -math.inf)
                a = torch.softmax(s, -1)
            else:
                a = cat[name]
            cb(a) if callable(cb) else b.set_scale(cb, a)
    net = b.finish(out, vals, shape_of(placeholders[0]))
    net.metadata.update({"source": type(module).__name__, "model": getattr(module, "neurosim_config", None),
                         "method": "Transformer conversion: stateless token ops, accumulated-input nonlinearities, "
                                   "IF quantiser populations" + (" on the attention operands" if attention_spikes
                                                                 else ""),
                         "norm": norm, "attention_spikes": attention_spikes, "v_init": v_init, "signed": signed,
                         "scales": b.scales, "dropped": b.dropped})
    return net


def _name(n: fx.Node) -> str:
    t = n.target
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _getitem(n: fx.Node, b: "_Builder", x: _V, idx, shape) -> _V:
    """``x[:, i]`` / ``x[:, a:b]`` / ``x[..., i]``: one Slice (and a Reshape for an integer index)."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    if not idx or idx[0] != slice(None):
        raise _unsupported(n, f"indexing {idx!r}", why="the batch axis must be kept whole (x[:, ...])")
    rest = list(idx[1:])
    if rest and rest[0] is Ellipsis:
        rest = [slice(None)] * (len(x.shape) - len(rest) + 1) + rest[1:]
    axes = [(ax, r) for ax, r in enumerate(rest) if r != slice(None)]
    if len(axes) != 1:
        raise _unsupported(n, f"indexing {idx!r}", why="one indexed axis converts")
    ax, r = axes[0]
    size = x.shape[ax]
    if isinstance(r, int):
        start, stop = r % size, r % size + 1
    elif isinstance(r, slice) and r.step in (None, 1):
        start, stop, _ = r.indices(size)
    else:
        raise _unsupported(n, f"indexing {idx!r}", why="integers and unit-step slices convert")
    node = b.add(n.name, Slice((b.graded(x),), axis=ax, start=start, stop=stop))
    sl_shape = x.shape[:ax] + (stop - start,) + x.shape[ax + 1:]
    if sl_shape != shape:
        node = b.add(f"{n.name}_squeeze", Reshape((node,), shape=shape))
    return _V(node, shape)


class _Builder:
    """Collects IR nodes; turns spike values into graded ones where a consumer needs ANN units."""

    def __init__(self, q: float, v_init: float, signed: bool):
        self.q, self.v_init, self.signed = q, v_init, signed
        self.nodes: dict = {}
        self.scales: dict[str, float] = {}
        self.dropped: list[str] = []
        self.tokens = False
        self._graded: dict[tuple, str] = {}
        self._pending: dict[str, dict] = {}  # population -> what to fix once its scale is measured

    def add(self, base: str, node) -> str:
        import re

        k = re.sub(r"[^A-Za-z0-9_]", "_", str(base)) or "node"
        if k in ("output", "readout", INPUT):
            k += "_"
        i, name = 1, k
        while name in self.nodes:
            i += 1
            name = f"{k}_{i}"
        self.nodes[name] = node
        return name

    def graded(self, v: _V) -> str:
        """The IR node carrying ``v`` in ANN units (an Add of weight lambda for spikes)."""
        if v.lam is None:
            return v.node
        key = (v.node,)
        if key not in self._graded:
            nm = self.add(f"{v.node}_value", Add((v.node,), weights=[np.float32(v.lam)]))
            self._graded[key] = nm
            self._pending.setdefault(v.node, {}).setdefault("scale_adds", []).append(nm)
        return self._graded[key]

    def linear(self, path, x: _V, w, bias, shape) -> _V:
        src = x.node
        if x.lam is not None:  # spikes: fold the scale into the weights (the synapses read the spikes)
            w = w * x.lam
        cls = Linear if len(x.shape) == 1 else TokenLinear
        nm = self.add(path, cls((src,), weight=w, bias=bias))
        if x.lam is not None:
            self._pending.setdefault(x.node, {}).setdefault("weights", []).append((nm, x.lam))
        return _V(nm, shape)

    def population(self, base: str, x: _V, shape, lam: float | None, sign: float = 1.0) -> _V:
        """An IF population whose spikes times ``lam`` quantise relu(sign * x); lam None: measured later."""
        lam0 = 1.0 if lam is None else lam
        cur = self.add(f"{base}_in", Add((self.graded(x),), weights=[np.float32(sign / lam0)]))
        pop = self.add(base, Neurons((cur,), shape=shape, threshold=1.0, v_init=self.v_init, signed=self.signed))
        self.scales[pop] = lam0
        if lam is None:
            self._pending.setdefault(pop, {})["input"] = (cur, sign)
        return _V(pop, shape, lam0)

    def operand(self, base: str, v: _V, sites: list, site, spikes: bool, unsigned: bool = False) -> str:
        """A MatMul operand: spikes (one population, or a +/- pair for a signed value) or the graded value."""
        if not spikes:
            return self.graded(v)
        if v.lam is not None or v.quantised:  # already spikes (a ReLU/QCFS output, a signed QCFS pair)
            return self.graded(v)
        pos = self.population(f"{base}_pos" if not unsigned else f"{base}_spk", v, v.shape, None)
        if unsigned:
            sites.append((site, "probs", pos) if isinstance(site, tuple) else (site, "operand", pos))
            return self.graded(pos)
        neg = self.population(f"{base}_neg", v, v.shape, None, sign=-1.0)

        def measure(a, pos=pos, neg=neg):
            lam = self._lam(a.abs())
            self.set_scale(pos, None, lam)
            self.set_scale(neg, None, lam)

        sites.append((site, "signed", measure))
        return self.add(f"{base}_ternary", Add((pos.node, neg.node), weights=[np.float32(1.0), np.float32(-1.0)]))

    def _lam(self, a: torch.Tensor) -> float:
        from neurosim.convert.core import _percentile

        lam = float(_percentile(a.flatten()[:, None], self.q, False))
        if not lam > 0:
            lam = float(a.max()) if float(a.max()) > 0 else 1.0
        return lam

    def set_scale(self, v: _V, a: torch.Tensor | None, lam: float | None = None):
        """Give population ``v`` its measured scale: its input weight, the Adds and weights reading it."""
        lam = self._lam(a.clamp(min=0)) if lam is None else lam
        pend = self._pending.get(v.node, {})
        cur, sign = pend["input"]
        self.nodes[cur] = Add(self.nodes[cur].inputs, weights=[np.float32(sign / lam)])
        for nm in pend.get("scale_adds", []):
            self.nodes[nm] = Add(self.nodes[nm].inputs, weights=[np.float32(lam)])
        for nm, old in pend.get("weights", []):
            n = self.nodes[nm]
            self.nodes[nm] = type(n)(n.inputs, weight=n.weight / old * lam, bias=n.bias)
        for ter in [k for k, n in self.nodes.items() if isinstance(n, Add) and v.node in n.inputs
                    and k.endswith("_ternary")]:
            n = self.nodes[ter]
            self.nodes[ter] = Add(n.inputs, weights=[np.float32(lam * float(np.sign(w))) for w in n.weights])
        v.lam = lam
        self.scales[v.node] = lam

    def finish(self, out: str, vals: dict, input_shape) -> SpikingNetwork:
        if out not in self.nodes:
            raise NeurosimError("the module's output is its input; nothing to convert")
        shape = vals_shape = [v.shape for v in vals.values() if v.node == out]
        if shape and len(vals_shape[0]) != 1:
            raise NeurosimError(f"the model returns a {vals_shape[0]} value per sample; a spiking network reads out "
                                "one vector (a classifier: e.g. models.create(..., num_classes=N))")
        return SpikingNetwork(input_shape=input_shape, nodes=self.nodes, readout=Readout(out, "membrane"),
                              encoding=Encoding("direct"))
