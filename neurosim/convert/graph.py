"""torch.fx graph -> a small ANN graph of convertible ops, with BatchNorm folded and no-ops dropped.

:func:`extract` traces any ``nn.Module`` that torch.fx can trace (``nn.Sequential`` or a custom
``forward`` using ``F.relu``, ``+`` residuals, ``torch.flatten``, ``x.view(x.size(0), -1)``...) and
returns an :class:`AnnGraph`: ops in topological order, each one of

=========  ==========================================================================================
kind       from
=========  ==========================================================================================
input      the single placeholder
linear     ``nn.Linear`` / ``nn.Conv2d`` (with a directly following BatchNorm1d/2d folded in)
act        ``nn.ReLU``, ``F.relu``, ``torch.relu``, ``x.relu()``, ``nn.ReLU6`` (clip 6), QCFS
avgpool    ``nn.AvgPool2d``, ``F.avg_pool2d``, ``nn.AdaptiveAvgPool2d`` (when it is a plain average
           pool: the output size divides the input), ``x.mean((2, 3))`` (global, then flatten)
maxpool    ``nn.MaxPool2d``, ``F.max_pool2d`` (dilation 1, floor mode)
flatten    ``nn.Flatten``, ``torch.flatten(x, 1)``, ``x.flatten(1)``, ``x.view/reshape(B, -1)``
add        ``+``, ``torch.add``, ``x.add(y)`` of two tensors (residuals)
=========  ==========================================================================================

Dropout, Identity and ``.contiguous()`` are dropped; a final softmax/log-softmax is dropped (argmax
is unchanged). ``maxpool -> act`` is rewritten to ``act -> maxpool`` (monotone activations commute
with max) so the spiking max-pool always reads spikes. Anything else raises a
:class:`~neurosim.errors.NeurosimError` naming the layer, its place in the graph and what is supported.

:meth:`AnnGraph.forward` runs the extracted graph (a test checks it equals the original module,
which is what proves the BatchNorm folding).
"""
from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from neurosim.errors import NeurosimError

SUPPORTED = ("nn.Linear, nn.Conv2d, nn.BatchNorm1d/2d (folded into the preceding Linear/Conv2d), "
             "nn.ReLU / F.relu / torch.relu / ReLU6 / QCFS, nn.AvgPool2d / F.avg_pool2d / nn.AdaptiveAvgPool2d "
             "(divisible sizes) / x.mean((2,3)), nn.MaxPool2d / F.max_pool2d, nn.Flatten / torch.flatten / "
             "view / reshape to (batch, -1), + / torch.add (residuals), nn.Dropout*, nn.Identity, "
             "a final softmax/log_softmax")


@dataclass(eq=False)
class Op:
    """One op of the ANN graph. ``shape`` excludes the batch; ``where`` names the source for errors."""

    name: str
    kind: str
    inputs: list[str]
    shape: tuple[int, ...]
    where: str = ""
    weight: torch.Tensor | None = None  # linear: [out, in] or [C_out, C_in/g, kH, kW]
    bias: torch.Tensor | None = None
    conv: dict = field(default_factory=dict)  # stride, padding, dilation, groups (conv only)
    pool: dict = field(default_factory=dict)  # kernel_size, stride, padding (pools)
    act: str = ""  # "relu" | "relu6" | "qcfs"
    clip: float | None = None  # upper clip of the activation (ReLU6: 6, QCFS: lambda)
    levels: int | None = None  # QCFS L
    folded_bn: str | None = None

    @property
    def is_conv(self) -> bool:
        return self.kind == "linear" and self.weight.dim() == 4


@dataclass(eq=False)
class AnnGraph:
    """The extracted ANN: ``ops`` in topological order, ``output`` the op whose value is returned."""

    ops: dict[str, Op]
    output: str
    input_shape: tuple[int, ...]
    dropped: list[str] = field(default_factory=list)

    def consumers(self, name: str) -> list[str]:
        return [k for k, o in self.ops.items() if name in o.inputs]

    def forward(self, x: torch.Tensor, record: set[str] | None = None):
        """Run the graph; returns the output, and a dict of the recorded ops' outputs if ``record``."""
        vals: dict[str, torch.Tensor] = {}
        rec = {}
        for k, o in self.ops.items():
            xs = [vals[i] for i in o.inputs]
            vals[k] = y = _apply(o, xs, x)
            if record and k in record:
                rec[k] = y
        return (vals[self.output], rec) if record is not None else vals[self.output]

    __call__ = forward


def _apply(o: Op, xs, x):
    if o.kind == "input":
        return x
    if o.kind == "linear":
        if o.is_conv:
            return F.conv2d(xs[0], o.weight, o.bias, **o.conv)
        return F.linear(xs[0], o.weight, o.bias)
    if o.kind == "act":
        if o.act == "qcfs":
            lam, L = o.clip, o.levels
            return torch.clamp(torch.floor(xs[0] / lam * L + 0.5) / L, 0, 1) * lam
        y = F.relu(xs[0])
        return y.clamp(max=o.clip) if o.clip is not None else y
    if o.kind == "avgpool":
        return F.avg_pool2d(xs[0], **o.pool, count_include_pad=True)
    if o.kind == "maxpool":
        return F.max_pool2d(xs[0], **o.pool)
    if o.kind == "flatten":
        return xs[0].flatten(1)
    if o.kind == "add":
        return xs[0] + xs[1]
    raise AssertionError(o.kind)  # pragma: no cover


# ---- tracing ----------------------------------------------------------------------------------------

def _is_qcfs(m) -> bool:
    return getattr(m, "neurosim_activation", None) == "qcfs"


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return _is_qcfs(m) or super().is_leaf_module(m, qualname)


_RELU_FN = {F.relu, torch.relu, torch.nn.functional.relu}
_ADD_FN = {operator.add, operator.iadd, torch.add}
_DROP_MODULES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity)
_FINAL_ONLY = (nn.Softmax, nn.LogSoftmax)


def _pair(v):
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)


def _where(n: fx.Node, path: str | None = None) -> str:
    ins = [a.name for a in n.all_input_nodes]
    users = [u.name for u in n.users]
    what = f"'{path}' " if path else ""
    return f"{what}(graph node {n.name!r}, reads {ins or ['nothing']}, read by {users or ['nothing']})"


def _unsupported(n: fx.Node, what: str, path: str | None = None, why: str = "") -> NeurosimError:
    return NeurosimError(f"cannot convert {what} at {_where(n, path)}{': ' + why if why else ''}. "
                         f"Supported: {SUPPORTED}")


def extract(module: nn.Module, example: torch.Tensor) -> AnnGraph:
    """Trace ``module`` with torch.fx and turn it into an :class:`AnnGraph` (module docstring)."""
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        graph = _Tracer().trace(module)
    except Exception as e:  # fx raises many types; tell the user what failed
        raise NeurosimError(f"torch.fx cannot trace {type(module).__name__}: {type(e).__name__}: {e}. "
                            f"Data-dependent control flow in forward() is not traceable; write the "
                            f"forward as a straight sequence of layers") from e
    gm = fx.GraphModule(module, graph)
    mods = dict(module.named_modules())
    for n in graph.nodes:  # refused before shape propagation, which would fail inside torch on token ids
        if n.op == "call_module" and isinstance(mods.get(n.target), nn.Embedding):
            raise _unsupported(n, f"nn.Embedding {n.target!r}", n.target,
                               "token inputs (embeddings, attention) are not convertible yet: this converter "
                               "takes real-valued inputs (images, vectors)")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example[:1])
    except Exception as e:  # noqa: BLE001 - torch raises many types; name the model and the input
        raise NeurosimError(f"cannot run {type(module).__name__} on an example of shape {tuple(example.shape)} "
                            f"({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}); pass "
                            "calibration data the model accepts") from None
    finally:
        module.train(was_training)
    ops: dict[str, Op] = {}
    alias: dict[str, str] = {}  # fx node -> the op that carries its value
    dropped: list[str] = []
    out_name = None

    def shape_of(n):
        tm = n.meta.get("tensor_meta")
        return tuple(int(s) for s in tm.shape[1:]) if tm is not None and hasattr(tm, "shape") else None

    def src(a):
        if not isinstance(a, fx.Node):
            raise NeurosimError(f"expected a tensor input, got constant {a!r}")
        if a.name not in alias:
            raise _unsupported(a, f"the value of {a.name!r}", why="it is not produced by a convertible op")
        return alias[a.name]

    def add(op: Op, n: fx.Node):
        if n.op == "call_module":  # name ops after the module path, which users recognise
            nice = n.target.replace(".", "_")
            if not nice[:1].isalpha():
                nice = f"{type(mods[n.target]).__name__.lower()}_{nice}"
            if nice not in ops and nice not in alias:
                op.name = nice
        if op.name in ops:
            op.name = n.name
        ops[op.name] = op
        alias[n.name] = op.name

    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise NeurosimError(f"the module must take exactly one tensor input, its forward takes "
                            f"{[p.name for p in placeholders]}")
    for n in graph.nodes:
        shape = shape_of(n)
        if n.op == "placeholder":
            add(Op("input", "input", [], shape, "input"), n)
            continue
        if n.op == "output":
            a = n.args[0]
            if not isinstance(a, fx.Node):
                raise NeurosimError(f"the module must return one tensor, it returns {type(a).__name__}")
            out_name = src(a)
            continue
        if n.op == "get_attr":
            raise _unsupported(n, f"parameter/buffer access {n.target!r}",
                               why="tensors used outside a layer cannot be converted")
        if n.op == "call_module":
            m = mods[n.target]
            path = n.target
            x = n.args[0] if n.args else None
            if isinstance(m, _DROP_MODULES):
                alias[n.name] = src(x)
                dropped.append(f"{path} ({type(m).__name__})")
            elif isinstance(m, nn.Linear):
                add(Op(n.name, "linear", [src(x)], shape, path, m.weight.detach().clone(),
                       None if m.bias is None else m.bias.detach().clone()), n)
            elif isinstance(m, nn.Conv2d):
                if m.padding_mode != "zeros":
                    raise _unsupported(n, f"Conv2d with padding_mode={m.padding_mode!r}", path,
                                       "only zero padding has a spiking equivalent")
                pad = m.padding
                if isinstance(pad, str):
                    if pad == "valid":
                        pad = (0, 0)
                    else:  # "same" with odd kernels and stride 1
                        k = m.kernel_size
                        if any(kk % 2 == 0 for kk in k):
                            raise _unsupported(n, "Conv2d padding='same' with an even kernel", path)
                        pad = tuple(m.dilation[i] * (k[i] - 1) // 2 for i in range(2))
                conv = {"stride": _pair(m.stride), "padding": _pair(pad), "dilation": _pair(m.dilation),
                        "groups": int(m.groups)}
                add(Op(n.name, "linear", [src(x)], shape, path, m.weight.detach().clone(),
                       None if m.bias is None else m.bias.detach().clone(), conv=conv), n)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                _fold_bn(ops, src(x), m, n, path, graph_users=len(x.users))
                alias[n.name] = src(x)
            elif isinstance(m, nn.ReLU):
                add(Op(n.name, "act", [src(x)], shape, path, act="relu"), n)
            elif isinstance(m, nn.ReLU6):
                add(Op(n.name, "act", [src(x)], shape, path, act="relu6", clip=6.0), n)
            elif isinstance(m, nn.Hardtanh) and m.min_val == 0.0:
                add(Op(n.name, "act", [src(x)], shape, path, act="relu6", clip=float(m.max_val)), n)
            elif _is_qcfs(m):
                if float(getattr(m, "shift", 0.5)) != 0.5:
                    raise _unsupported(n, "QCFS with shift != 0.5", path,
                                       "conversion is unbiased only for the shift phi = 1/2")
                add(Op(n.name, "act", [src(x)], shape, path, act="qcfs", clip=float(m.threshold.detach()),
                       levels=int(m.levels)), n)
            elif isinstance(m, nn.Flatten):
                if m.start_dim != 1 or m.end_dim != -1:
                    raise _unsupported(n, f"nn.Flatten(start_dim={m.start_dim}, end_dim={m.end_dim})", path,
                                       "only flattening everything but the batch is supported")
                add(Op(n.name, "flatten", [src(x)], shape, path), n)
            elif isinstance(m, nn.AvgPool2d):
                if m.ceil_mode or not m.count_include_pad or m.divisor_override:
                    raise _unsupported(n, "AvgPool2d with ceil_mode/count_include_pad=False/divisor_override", path)
                add(Op(n.name, "avgpool", [src(x)], shape, path, pool=_pool(m.kernel_size, m.stride, m.padding)), n)
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                add(Op(n.name, "avgpool", [src(x)], shape, path,
                       pool=_adaptive(shape_of(x), m.output_size, n, path)), n)
            elif isinstance(m, nn.MaxPool2d):
                if m.ceil_mode or _pair(m.dilation) != (1, 1) or m.return_indices:
                    raise _unsupported(n, "MaxPool2d with ceil_mode, dilation or return_indices", path)
                add(Op(n.name, "maxpool", [src(x)], shape, path, pool=_pool(m.kernel_size, m.stride, m.padding)), n)
            elif isinstance(m, _FINAL_ONLY):
                _final_only(n, path, type(m).__name__)
                alias[n.name] = src(x)
                dropped.append(f"{path} ({type(m).__name__}, argmax-preserving)")
            else:
                raise _unsupported(n, f"layer {type(m).__name__}", path)
            continue
        # call_function / call_method
        t = n.target
        name = t if isinstance(t, str) else getattr(t, "__name__", str(t))
        args = list(n.args)
        kw = dict(n.kwargs)
        if n.op == "call_method" and t == "size":
            if any(u.op == "call_method" and u.target in ("view", "reshape") for u in n.users) or \
                    any(u.target is operator.getitem for u in n.users):
                continue  # feeds a view(x.size(0), -1): checked there through the output shape
            raise _unsupported(n, "x.size()", why="sizes are only supported inside view/reshape to (batch, -1)")
        if t is operator.getitem and isinstance(args[0], fx.Node) and args[0].op == "call_method" \
                and args[0].target == "size":
            continue
        if (n.op == "call_function" and t in _RELU_FN) or (n.op == "call_method" and t == "relu"):
            if kw.get("inplace") is True or (len(args) > 1 and args[1] is True):
                pass  # in-place is fine: we never reuse the input afterwards in the SNN
            add(Op(n.name, "act", [src(args[0])], shape, n.name, act="relu"), n)
        elif (n.op == "call_function" and t in (F.relu6,)):
            add(Op(n.name, "act", [src(args[0])], shape, n.name, act="relu6", clip=6.0), n)
        elif (n.op == "call_function" and t in _ADD_FN) or (n.op == "call_method" and t in ("add", "add_", "__add__")):
            if len(args) != 2 or not all(isinstance(a, fx.Node) for a in args) or kw.get("alpha", 1) != 1:
                raise _unsupported(n, f"{name} with a constant or alpha", why="only tensor + tensor (residual) "
                                   "additions convert; fold constants into a layer's bias")
            a, b = src(args[0]), src(args[1])
            if shape_of(args[0]) != shape_of(args[1]):
                raise _unsupported(n, f"{name} of shapes {shape_of(args[0])} and {shape_of(args[1])}",
                                   why="broadcasting additions are not supported")
            add(Op(n.name, "add", [a, b], shape, n.name), n)
        elif (n.op == "call_function" and t is torch.flatten) or (n.op == "call_method" and t == "flatten"):
            start = args[1] if len(args) > 1 else kw.get("start_dim", 0 if n.op == "call_function" else 0)
            end = args[2] if len(args) > 2 else kw.get("end_dim", -1)
            if start != 1 or end != -1:
                raise _unsupported(n, f"flatten(start_dim={start}, end_dim={end})",
                                   why="only flattening everything but the batch (start_dim=1) is supported")
            add(Op(n.name, "flatten", [src(args[0])], shape, n.name), n)
        elif n.op == "call_method" and t in ("view", "reshape"):
            if shape is None or len(shape) != 1 or shape_of(args[0]) is None:
                raise _unsupported(n, f"x.{t}{tuple(a if not isinstance(a, fx.Node) else a.name for a in args[1:])}",
                                   why="only reshaping to (batch, -1) is supported")
            add(Op(n.name, "flatten", [src(args[0])], shape, n.name), n)
        elif n.op == "call_method" and t == "contiguous" or (n.op == "call_function" and t is F.dropout):
            alias[n.name] = src(args[0])
        elif n.op == "call_function" and t is F.avg_pool2d:
            p = _fn_args(args, kw, ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                    "divisor_override"])
            if p.get("ceil_mode") or p.get("count_include_pad") is False or p.get("divisor_override"):
                raise _unsupported(n, "F.avg_pool2d with ceil_mode/count_include_pad=False/divisor_override")
            add(Op(n.name, "avgpool", [src(args[0])], shape, n.name,
                   pool=_pool(p["kernel_size"], p.get("stride"), p.get("padding", 0))), n)
        elif n.op == "call_function" and t is F.adaptive_avg_pool2d:
            p = _fn_args(args, kw, ["input", "output_size"])
            add(Op(n.name, "avgpool", [src(args[0])], shape, n.name,
                   pool=_adaptive(shape_of(args[0]), p["output_size"], n, None)), n)
        elif n.op == "call_function" and t in (F.max_pool2d, torch.max_pool2d):
            p = _fn_args(args, kw, ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                    "return_indices"])
            if p.get("ceil_mode") or _pair(p.get("dilation", 1)) != (1, 1) or p.get("return_indices"):
                raise _unsupported(n, "F.max_pool2d with ceil_mode, dilation or return_indices")
            add(Op(n.name, "maxpool", [src(args[0])], shape, n.name,
                   pool=_pool(p["kernel_size"], p.get("stride"), p.get("padding", 0))), n)
        elif (n.op == "call_method" and t == "mean") or (n.op == "call_function" and t is torch.mean):
            p = _fn_args(args, kw, ["input", "dim", "keepdim"])
            dims = p.get("dim")
            dims = tuple(sorted(d % 4 for d in (dims if isinstance(dims, (tuple, list)) else [dims]))) \
                if dims is not None else None
            xs = shape_of(args[0])
            if dims != (2, 3) or p.get("keepdim") or xs is None or len(xs) != 3:
                raise _unsupported(n, f"mean(dim={p.get('dim')})", why="only a global spatial mean x.mean((2, 3)) "
                                   "of a [B, C, H, W] tensor converts (as average pooling)")
            pool = {"kernel_size": (xs[1], xs[2]), "stride": (xs[1], xs[2]), "padding": (0, 0)}
            pname = f"{n.name}_pool"
            ops[pname] = Op(pname, "avgpool", [src(args[0])], (xs[0], 1, 1), n.name, pool=pool)
            add(Op(n.name, "flatten", [pname], shape, n.name), n)
        elif (n.op == "call_function" and t in (F.softmax, F.log_softmax, torch.softmax, torch.log_softmax)) or \
                (n.op == "call_method" and t in ("softmax", "log_softmax")):
            _final_only(n, None, name)
            alias[n.name] = src(args[0])
            dropped.append(f"{n.name} ({name}, argmax-preserving)")
        else:
            raise _unsupported(n, f"function {name}")
    g = AnnGraph(ops, out_name, tuple(int(s) for s in example.shape[1:]), dropped)
    _commute_maxpool(g)
    _prune(g)
    return g


def _fn_args(args, kw, names):
    out = dict(zip(names, args))
    out.update(kw)
    return out


def _pool(kernel, stride, padding):
    k = _pair(kernel)
    return {"kernel_size": k, "stride": _pair(stride) if stride not in (None, ()) else k, "padding": _pair(padding)}


def _adaptive(in_shape, out_size, n, path):
    if in_shape is None or len(in_shape) != 3:
        raise _unsupported(n, "AdaptiveAvgPool2d", path, "needs a [B, C, H, W] input")
    osz = _pair(out_size) if not isinstance(out_size, (tuple, list)) or None not in out_size else None
    if osz is None or any(h % o for h, o in zip(in_shape[1:], osz)):
        raise _unsupported(n, f"AdaptiveAvgPool2d({out_size}) of a {in_shape[1]}x{in_shape[2]} map", path,
                           "the output size must divide the input size (then it is a plain AvgPool2d)")
    k = tuple(h // o for h, o in zip(in_shape[1:], osz))
    return {"kernel_size": k, "stride": k, "padding": (0, 0)}


def _final_only(n: fx.Node, path, what):
    if len(n.users) != 1 or next(iter(n.users)).op != "output":
        raise _unsupported(n, what, path, "softmax is only allowed as the very last op (it is dropped)")


def _fold_bn(ops: dict[str, Op], prev: str, bn, n: fx.Node, path: str, graph_users: int):
    """Fold eval-mode BatchNorm into the directly preceding Linear/Conv2d (Ioffe & Szegedy 2015).

    ``y = gamma (W x + b - mu) / sqrt(var + eps) + beta``  =>  ``W' = W * s``, ``b' = (b - mu) * s + beta``
    with ``s = gamma / sqrt(var + eps)`` per output channel.
    """
    p = ops.get(prev)
    if p is None or p.kind != "linear" or p.folded_bn is not None:
        what = "the network input" if p is not None and p.kind == "input" else \
            f"'{p.where}' ({p.kind})" if p is not None else repr(prev)
        raise _unsupported(n, f"{type(bn).__name__}", path,
                           f"BatchNorm can only be folded into a directly preceding Conv2d/Linear, it follows {what}")
    if graph_users != 1:
        raise _unsupported(n, f"{type(bn).__name__}", path,
                           "the layer before it is also read elsewhere, so it cannot absorb the BatchNorm")
    if bn.running_mean is None or not bn.track_running_stats:
        raise _unsupported(n, f"{type(bn).__name__} without running statistics", path)
    if p.is_conv != isinstance(bn, nn.BatchNorm2d):
        raise _unsupported(n, f"{type(bn).__name__} after a {'Conv2d' if p.is_conv else 'Linear'}", path)
    with torch.no_grad():
        s = bn.running_var.double().add(bn.eps).rsqrt()
        if bn.weight is not None:
            s = s * bn.weight.double()
        b = p.bias.double() if p.bias is not None else torch.zeros_like(s)
        b = (b - bn.running_mean.double()) * s
        if bn.bias is not None:
            b = b + bn.bias.double()
        w = p.weight.double() * s.view(-1, *([1] * (p.weight.dim() - 1)))
    p.weight, p.bias = w.to(p.weight.dtype), b.to(p.weight.dtype)
    p.folded_bn = path


def _commute_maxpool(g: AnnGraph):
    """``maxpool -> act`` becomes ``act -> maxpool`` (max commutes with monotone activations)."""
    for k in list(g.ops):
        o = g.ops.get(k)
        if o is None or o.kind != "maxpool":
            continue
        users = g.consumers(k)
        src = g.ops[o.inputs[0]]
        if src.kind == "act" or len(users) != 1 or g.ops[users[0]].kind != "act" or k == g.output:
            continue
        a = g.ops[users[0]]
        # new order: src -> act -> maxpool -> (act's consumers)
        new_act = copy.copy(a)
        new_act.inputs, new_act.shape = [o.inputs[0]], src.shape
        new_pool = copy.copy(o)
        new_pool.inputs, new_pool.shape = [a.name], a.shape
        items = []
        for name, op in g.ops.items():
            if name == k:
                items.append((a.name, new_act))
                items.append((k, new_pool))
            elif name == a.name:
                continue
            else:
                items.append((name, op))
        g.ops = dict(items)
        for op in g.ops.values():
            if op is not new_pool:
                op.inputs = [k if i == a.name else i for i in op.inputs]
        if g.output == a.name:
            g.output = k


def _prune(g: AnnGraph):
    """Drop ops whose value never reaches the output (e.g. a size() branch)."""
    need = {g.output}
    for k in reversed(list(g.ops)):
        if k in need:
            need.update(g.ops[k].inputs)
    g.ops = {k: o for k, o in g.ops.items() if k in need}
