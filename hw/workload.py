"""Torch model -> :class:`Workload`: every op that costs, with shapes, MACs, FLOPs and bytes moved.

``trace(module, example_inputs)`` runs the model once on ``torch.device("meta")``: tensors carry
shapes and dtypes but no data, so GPT-3 175B is profiled without allocating its 350 GB of weights.
Ops are recorded at the ATen level with a ``TorchDispatchMode`` (the mechanism of
``torch.utils.flop_counter.FlopCounterMode``), so any ``nn.Module`` works, functional code included,
and each op is attributed to the innermost module that issued it (forward hooks).

Counting conventions (stated once, used everywhere):

* **MACs** are counted for convolutions, matmuls (mm/addmm/bmm/baddbmm) and fused attention only.
  A conv's MACs are ``N * K * OH * OW * (C/groups) * R * S`` (transposed: over the input positions);
  ``mm [M,K]x[K,N]`` is ``M*K*N``. Bias additions are not MACs (torchvision's and fvcore's
  convention), and **FLOPs = 2 x MACs** for these ops, which is exactly ``FlopCounterMode``'s count.
* Other ops have no MACs; their FLOPs are per output element from :data:`FLOPS_PER_ELEMENT`
  (1 for add/mul/relu, 5 for softmax and layer norm, ...), pooling ``kernel`` per output element.
* **Bytes**: ``param_bytes`` is the parameter data an op reads (an embedding reads only its gathered
  rows), ``read_bytes``/``write_bytes`` are its activation inputs and outputs. Views, reshapes and
  in-place aliasing cost nothing. The workload's ``param_bytes`` is the model size: each parameter
  once, tied weights once.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from neurosim.errors import NeurosimError

aten = torch.ops.aten

#: FLOPs per output element for ops that are not conv/matmul (documented approximations).
FLOPS_PER_ELEMENT = {
    "softmax": 5,  # max, subtract, exp, sum, divide
    "layer_norm": 5,  # mean, variance, subtract, divide, affine
    "group_norm": 5,
    "rms_norm": 4,
    "batch_norm": 2,  # inference: folded scale and shift
    "gelu": 8,  # tanh approximation: a handful of mul/add and one tanh
    "silu": 4,
    "elementwise": 1,
    "reduction": 1,  # per input element
    "memory": 0,
    "embedding": 0,
}


@dataclass(frozen=True)
class Op:
    """One costed ATen op.

    ``kind`` is one of ``conv``, ``linear`` (a matmul against a parameter), ``matmul`` (two
    activations, e.g. attention scores), ``attention`` (fused SDPA), ``embedding``, ``norm``, ``pool``,
    ``softmax``, ``elementwise``, ``reduction``, ``memory`` (copies, concatenation, gathers).
    ``attrs`` holds the geometry a hardware model needs: for ``conv`` ``N C H W K R S stride pad
    dilation groups OH OW transposed``; for ``linear``/``matmul`` ``B M K N`` (``B`` the batch of
    independent products); for ``attention`` ``B H L S E Ev``.
    """

    name: str  # module path that issued the op ("" for the root)
    module_type: str  # class of that module
    aten: str  # ATen op, e.g. "convolution", "addmm"
    kind: str
    input_shapes: tuple
    output_shape: tuple
    dtype: str
    macs: int
    flops: int
    param_bytes: int
    read_bytes: int
    write_bytes: int
    attrs: dict = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return self.param_bytes + self.read_bytes + self.write_bytes

    def gemms(self) -> list[tuple[int, int, int, int]]:
        """This op as GEMMs ``(M, K, N, count)``: ``count`` independent ``[M,K]x[K,N]`` products.

        A conv becomes its im2col GEMM per group (M = N*OH*OW output pixels, K = C/g*R*S,
        N = K/g filters); attention becomes its two batched products (scores and values).
        """
        a = self.attrs
        if self.kind == "conv":
            if a["transposed"]:  # a transposed conv is the gradient of a conv: GEMM over input pixels
                return [(a["N"] * a["H"] * a["W"], a["C"] // a["groups"], a["K"] // a["groups"] * a["R"] * a["S"], a["groups"])]
            return [(a["N"] * a["OH"] * a["OW"], a["C"] // a["groups"] * a["R"] * a["S"], a["K"] // a["groups"], a["groups"])]
        if self.kind in ("linear", "matmul"):
            return [(a["M"], a["K"], a["N"], a["B"])]
        if self.kind == "attention":
            return [(a["L"], a["E"], a["S"], a["B"] * a["H"]), (a["L"], a["S"], a["Ev"], a["B"] * a["H"])]
        return []


@dataclass
class Workload:
    """A traced model: its ops in execution order and its parameter totals."""

    model: str
    ops: list[Op]
    params: int  # unique parameters (tied weights once)
    param_bytes: int  # model size at the traced dtype
    input_shapes: tuple
    dtype: str
    batch: int

    # ---- totals ----
    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def flops(self) -> int:
        return sum(o.flops for o in self.ops)

    @property
    def activation_bytes(self) -> int:
        """Activation traffic: every op's inputs read plus outputs written."""
        return sum(o.read_bytes + o.write_bytes for o in self.ops)

    @property
    def op_param_bytes(self) -> int:
        """Parameter bytes read by the ops (a weight used twice is read twice)."""
        return sum(o.param_bytes for o in self.ops)

    def totals(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": self.params,
            "macs": self.macs,
            "flops": self.flops,
            "param_bytes": self.param_bytes,
            "activation_bytes": self.activation_bytes,
            "op_param_bytes": self.op_param_bytes,
            "ops": len(self.ops),
            "batch": self.batch,
            "dtype": self.dtype,
            "input_shapes": [list(s) for s in self.input_shapes],
        }

    def kinds(self) -> Counter:
        return Counter(o.kind for o in self.ops)

    # ---- views ----
    def to_dataframe(self):
        """One row per op (the per-layer table)."""
        import pandas as pd

        rows = [
            {
                "layer": o.name or "(root)",
                "type": o.module_type,
                "op": o.aten,
                "kind": o.kind,
                "output_shape": "x".join(map(str, o.output_shape)),
                "macs": o.macs,
                "flops": o.flops,
                "param_bytes": o.param_bytes,
                "read_bytes": o.read_bytes,
                "write_bytes": o.write_bytes,
            }
            for o in self.ops
        ]
        return pd.DataFrame(rows, columns=["layer", "type", "op", "kind", "output_shape", "macs", "flops",
                                           "param_bytes", "read_bytes", "write_bytes"])

    def by_module(self):
        """Ops summed per issuing module, in first-seen order."""
        df = self.to_dataframe()
        g = df.groupby(["layer", "type"], sort=False)[["macs", "flops", "param_bytes", "read_bytes", "write_bytes"]].sum()
        return g.reset_index()

    def to_dict(self) -> dict:
        d = self.totals()
        d["layers"] = [
            {**{k: v for k, v in asdict(o).items() if k != "attrs"}, "attrs": dict(o.attrs)} for o in self.ops
        ]
        for layer in d["layers"]:
            layer["input_shapes"] = [list(s) for s in layer["input_shapes"]]
            layer["output_shape"] = list(layer["output_shape"])
        return d

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    def filter(self, kinds: Iterable[str]) -> list[Op]:
        ks = set(kinds)
        return [o for o in self.ops if o.kind in ks]


# ---- recording ----------------------------------------------------------------------------------------

def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


def _nbytes(t: torch.Tensor, float_elt: int | None = None) -> int:
    """Bytes of distinct elements: a broadcast (stride-0) dimension is read once, not per copy.

    ``float_elt`` counts floating tensors at that element size (an int8/fp8 deployment traced in fp16);
    integer tensors (token ids, indices, masks) keep their own size.
    """
    elt = float_elt if float_elt and t.is_floating_point() else t.element_size()
    return math.prod(n for n, st in zip(t.shape, t.stride()) if st != 0) * elt


def _key(t: torch.Tensor) -> int:
    """Identity of a tensor's storage, shared by its views (meta tensors have storages without data)."""
    return t.untyped_storage()._cdata


_MATMUL = {"mm", "addmm", "bmm", "baddbmm"}
_ATTENTION = {
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
}
_NORM = {
    "native_layer_norm": "layer_norm", "native_batch_norm": "batch_norm",
    "_native_batch_norm_legit": "batch_norm", "_native_batch_norm_legit_no_training": "batch_norm",
    "native_group_norm": "group_norm", "_fused_rms_norm": "rms_norm", "rms_norm": "rms_norm",
}
_POOL = {"max_pool2d_with_indices", "max_pool1d_with_indices", "max_pool3d_with_indices", "avg_pool2d",
         "avg_pool1d", "avg_pool3d", "_adaptive_avg_pool2d", "adaptive_max_pool2d", "_adaptive_avg_pool3d",
         "adaptive_avg_pool1d"}
_SOFTMAX = {"_softmax", "_log_softmax", "softmax", "log_softmax", "_safe_softmax"}
_REDUCTION = {"sum", "mean", "amax", "amin", "max", "min", "var", "var_mean", "std", "norm", "linalg_vector_norm",
              "argmax", "cumsum", "topk", "sort", "logsumexp", "prod", "any", "all"}
_MEMORY = {"clone", "_to_copy", "copy_", "cat", "stack", "index_select", "gather", "scatter", "scatter_add",
           "index_put", "index_put_", "index", "index_add", "index_add_", "index_copy", "index_copy_", "repeat",
           "constant_pad_nd", "embedding_dense_backward", "masked_fill", "where", "scatter_", "scatter_add_",
           "one_hot", "_unsafe_index", "tril", "triu", "roll", "flip", "split_with_sizes", "narrow_copy",
           "slice_scatter", "new_zeros", "zeros_like", "ones_like", "full_like", "fill_", "zero_"}
_FREE = {"detach", "lift_fresh", "_local_scalar_dense", "empty", "empty_like", "zeros", "ones", "full",
         "arange", "randn", "rand", "randint", "scalar_tensor", "empty_strided", "new_empty", "new_empty_strided",
         "_unsafe_view", "alias", "set_", "resize_", "sym_size", "sym_stride", "is_same_size", "_has_compatible_shallow_copy_type"}


def _classify(name: str) -> str:
    if name == "convolution":
        return "conv"
    if name in _MATMUL:
        return "matmul"
    if name in _ATTENTION:
        return "attention"
    if name == "embedding":
        return "embedding"
    if name in _NORM:
        return "norm"
    if name in _POOL:
        return "pool"
    if name in _SOFTMAX:
        return "softmax"
    if name in _REDUCTION:
        return "reduction"
    if name in _MEMORY:
        return "memory"
    return "elementwise"


def _pair(v, n=2):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


class _Recorder(TorchDispatchMode):
    def __init__(self, param_keys: set[int], stack: list, storage_dtype: torch.dtype | None = None):
        super().__init__()
        self.param_keys = param_keys
        # int8/fp8 are traced in fp16: floating tensors are counted at the storage dtype's size
        self.float_elt = _elt_size(storage_dtype) if storage_dtype is not None else None
        self.float_name = str(storage_dtype).replace("torch.", "") if storage_dtype is not None else None
        self.stack = stack  # [(name, type)] of the modules currently running
        self.ops: list[Op] = []
        self.fused = 0  # >0 while a fused op (SDPA) runs: its decomposition is not recorded

    def _nbytes(self, t: torch.Tensor) -> int:
        return _nbytes(t, self.float_elt)

    def _dtype(self, t: torch.Tensor) -> str:
        return self.float_name if self.float_name and t.is_floating_point() else str(t.dtype).replace("torch.", "")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.fused:
            return out
        try:
            self._record(func, args, kwargs, out)
        except NeurosimError:
            raise
        except Exception as e:  # a costing bug must not hide the op: say which one
            raise RuntimeError(f"workload: could not cost {func} in {self.stack[-1][0] if self.stack else 'root'}: {e}") from e
        return out

    def _record(self, func, args, kwargs, out):
        name = func.overloadpacket.__name__
        if name in _FREE or getattr(func, "is_view", False):
            return
        ins = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not outs:
            return
        kind = _classify(name)
        # In-place ops (add_, relu_) write into an input: count the write, not a fresh allocation.
        param_in = [t for t in ins if _key(t) in self.param_keys]
        act_in = [t for t in ins if _key(t) not in self.param_keys]
        main = outs[0]
        macs, attrs = 0, {}
        nb = self._nbytes
        param_bytes = sum(nb(t) for t in param_in)
        read_bytes = sum(nb(t) for t in act_in)
        write_bytes = sum(nb(t) for t in outs if not (name.endswith("_") and t is args[0]))
        if name.endswith("_") or kind in ("norm", "pool"):
            write_bytes = nb(main)  # in-place result, or the output without saved stats/indices

        if kind == "conv":
            x, w = args[0], args[1]
            stride, padding, dilation, transposed, _, groups = args[3:9]
            nsp = w.dim() - 2
            stride, padding, dilation = _pair(stride, nsp), _pair(padding, nsp), _pair(dilation, nsp)
            n, c = x.shape[0], x.shape[1]
            if transposed:
                k = w.shape[1] * groups
                macs = n * c * _numel(x.shape[2:]) * (k // groups) * _numel(w.shape[2:])
            else:
                k = w.shape[0]
                macs = n * k * _numel(main.shape[2:]) * (c // groups) * _numel(w.shape[2:])
            sp_in = tuple(x.shape[2:]) + (1,) * (2 - nsp)
            sp_out = tuple(main.shape[2:]) + (1,) * (2 - nsp)
            ks = tuple(w.shape[2:]) + (1,) * (2 - nsp)
            attrs = dict(N=n, C=c, H=sp_in[0], W=sp_in[1], K=k, R=ks[0], S=ks[1], stride=list(stride),
                         pad=list(padding), dilation=list(dilation), groups=groups, OH=sp_out[0], OW=sp_out[1],
                         transposed=bool(transposed))
        elif kind == "matmul":
            a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
            if a.dim() == 2:
                bsz, (m, kk), nn_ = 1, a.shape, b.shape[1]
            else:
                bsz, m, kk, nn_ = a.shape[0], a.shape[1], a.shape[2], b.shape[2]
            macs = bsz * m * kk * nn_
            if bsz > 1 and b.stride(0) == 0:
                bsz, m = 1, bsz * m  # a weight broadcast over a batch of rows is one GEMM (F.linear on 3-D input)
            attrs = dict(B=bsz, M=m, K=kk, N=nn_)
            if param_in:
                kind = "linear"
        elif kind == "attention":
            q, k_, v = args[0], args[1], args[2]
            b_, h, l_, e = q.shape
            s, ev = k_.shape[-2], v.shape[-1]
            macs = b_ * h * l_ * s * (e + ev)
            attrs = dict(B=b_, H=h, L=l_, S=s, E=e, Ev=ev)
        elif kind == "embedding":
            w, idx = args[0], args[1]
            param_bytes = idx.numel() * w.shape[1] * (self.float_elt or w.element_size())  # gathered rows only
            read_bytes = nb(idx)
        flops = 2 * macs if macs else self._flops(kind, name, args, ins, main)
        self.ops.append(Op(
            name=self.stack[-1][0] if self.stack else "",
            module_type=self.stack[-1][1] if self.stack else "",
            aten=name, kind=kind,
            input_shapes=tuple(tuple(t.shape) for t in ins),
            output_shape=tuple(main.shape), dtype=self._dtype(main),
            macs=int(macs), flops=int(flops), param_bytes=int(param_bytes), read_bytes=int(read_bytes),
            write_bytes=int(write_bytes), attrs=attrs,
        ))

    def record_attention(self, q, k, v, mask, out):
        """One fused scaled-dot-product attention: QK^T and PV, never materialised in memory."""
        b_, h, l_, e = (1,) * (4 - q.dim()) + tuple(q.shape)
        s, ev = k.shape[-2], v.shape[-1]
        macs = b_ * h * l_ * s * (e + ev)
        reads = [q, k, v] + ([mask] if isinstance(mask, torch.Tensor) else [])
        self.ops.append(Op(
            name=self.stack[-1][0] if self.stack else "", module_type=self.stack[-1][1] if self.stack else "",
            aten="scaled_dot_product_attention", kind="attention",
            input_shapes=tuple(tuple(t.shape) for t in reads), output_shape=tuple(out.shape),
            dtype=self._dtype(out), macs=macs, flops=2 * macs, param_bytes=0,
            read_bytes=sum(self._nbytes(t) for t in reads), write_bytes=self._nbytes(out),
            attrs=dict(B=b_, H=h, L=l_, S=s, E=e, Ev=ev),
        ))

    @staticmethod
    def _flops(kind, name, args, ins, main) -> int:
        if kind == "norm":
            return FLOPS_PER_ELEMENT[_NORM[name]] * main.numel()
        if kind == "softmax":
            return FLOPS_PER_ELEMENT["softmax"] * main.numel()
        if kind == "pool":
            if name.startswith("_adaptive") or name.startswith("adaptive"):
                return ins[0].numel()
            k = _pair(args[1])
            return _numel(k) * main.numel()
        if kind == "reduction":
            return ins[0].numel() if ins else 0
        if kind == "elementwise":
            per = FLOPS_PER_ELEMENT.get(name.rstrip("_"), 1)
            return per * main.numel()
        return 0


class _FusedOps(TorchFunctionMode):
    """Sees torch-level calls: records SDPA as one fused op instead of its math decomposition.

    FLOPs are those of the two products (2*B*H*L*S*(E+Ev)), ``FlopCounterMode``'s formula; a causal
    mask is not discounted (FlashAttention skips about half the blocks; the bound is stated, not hidden).
    """

    def __init__(self, rec: _Recorder):
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention or self.rec.fused:
            return func(*args, **kwargs)
        self.rec.fused += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self.rec.fused -= 1
        q, k, v = args[:3]
        mask = args[3] if len(args) > 3 else kwargs.get("attn_mask")
        self.rec.record_attention(q, k, v, mask, out)
        return out


@contextmanager
def _module_stack(module: nn.Module, stack: list):
    handles = []
    for mname, m in module.named_modules():
        def pre(mod, inp, _n=mname, _t=type(m).__name__):
            stack.append((_n, _t))

        def post(mod, inp, out):
            stack.pop()

        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))  # not always_call: on error the failing module stays on top
    try:
        yield
    finally:
        for h in handles:
            h.remove()


_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
           "bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp64": torch.float64, "float64": torch.float64,
           "fp8": torch.float8_e4m3fn, "float8": torch.float8_e4m3fn, "int8": torch.int8}


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``"bf16"`` -> ``torch.bfloat16``; unknown names raise with the list of valid ones."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise NeurosimError(f"unknown dtype {dtype!r}; valid: {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def trace(module: nn.Module, example_inputs, *, dtype: str | torch.dtype | None = None,
          name: str | None = None) -> Workload:
    """Run ``module(*example_inputs)`` on the meta device and record every op that costs.

    ``module`` may hold real weights (they are replaced by meta stand-ins for the call; the module is
    not modified) or be built under ``torch.device("meta")``. ``dtype`` re-types floating parameters
    and inputs, so one trace answers "what if this ran in bf16". For ``int8``/``fp8`` the weights and
    activations are *counted* at one byte (a quantised deployment) while the arithmetic runs in fp16.
    """
    tdtype = parse_dtype(dtype)
    storage_dtype = tdtype
    if tdtype in (torch.int8, torch.float8_e4m3fn):
        tdtype = torch.float16  # meta kernels do not do int8/fp8 arithmetic; bytes rescaled below
    if not isinstance(example_inputs, (tuple, list)):
        example_inputs = (example_inputs,)

    def to_meta(t):
        if not isinstance(t, torch.Tensor):
            return t
        m = torch.empty_like(t, device="meta")
        return m.to(tdtype) if tdtype is not None and m.is_floating_point() else m

    state = {k: to_meta(v) for k, v in module.named_parameters(remove_duplicate=False)}
    state.update({k: to_meta(v) for k, v in module.named_buffers(remove_duplicate=False)})
    # Tied weights: one meta tensor for all names of the same parameter.
    seen: dict[int, torch.Tensor] = {}
    for k, v in list(module.named_parameters(remove_duplicate=False)):
        state[k] = seen.setdefault(id(v), state[k])
    inputs = tree_map(to_meta, tuple(example_inputs))
    param_keys = {_key(t) for t in state.values()}
    uniq = {id(p): p for p in module.parameters()}
    n_params = sum(p.numel() for p in uniq.values())
    p_bytes = sum(p.numel() * (_elt_size(storage_dtype) if storage_dtype and p.is_floating_point() else p.element_size())
                  for p in uniq.values())

    stack: list = []
    rec = _Recorder(param_keys, stack, storage_dtype if storage_dtype != tdtype else None)
    was_training = module.training
    module.eval()
    try:
        with ExitStack() as es:
            es.enter_context(torch.no_grad())
            es.enter_context(torch.device("meta"))
            es.enter_context(_module_stack(module, stack))
            es.enter_context(rec)
            es.enter_context(_FusedOps(rec))
            torch.func.functional_call(module, state, inputs, strict=False, tie_weights=True)
    except NeurosimError:
        raise
    except (RuntimeError, ValueError, IndexError, TypeError, AssertionError) as e:
        where = stack[-1][0] if stack else "the model's input"
        what = f"{stack[-1][1]} '{where}'" if stack else where
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NeurosimError(f"{what} failed on inputs {[tuple(t.shape) for t in inputs if isinstance(t, torch.Tensor)]}: {msg}") from e
    finally:
        module.train(was_training)

    ops = rec.ops
    batch = next((t.shape[0] for t in inputs if isinstance(t, torch.Tensor) and t.dim() > 0), 1)
    return Workload(
        model=name or getattr(module, "neurosim_config", {}).get("name", type(module).__name__),
        ops=ops, params=n_params, param_bytes=p_bytes,
        input_shapes=tuple(tuple(t.shape) for t in inputs if isinstance(t, torch.Tensor)),
        dtype=str(storage_dtype or next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)).replace("torch.", ""),
        batch=int(batch),
    )


def _elt_size(dt: torch.dtype) -> int:
    return torch.empty((), dtype=dt, device="meta").element_size()


def profile(model_name: str, *, batch: int = 1, seq: int | None = None, dtype: str | None = None,
            input_shape: tuple[int, ...] | None = None, **overrides) -> Workload:
    """Build a zoo model on the meta device and trace it: the CLI's ``neurosim profile``."""
    import models

    with torch.device("meta"):
        module = models.create(model_name, **overrides)
        if input_shape is not None:
            if any(d < 1 for d in input_shape):
                raise NeurosimError(f"input shape {input_shape} must be positive integers")
            inputs = (torch.empty((batch, *input_shape)),)
        else:
            inputs = models.example_inputs(model_name, batch=batch, seq=seq, **overrides)
    return trace(module, inputs, dtype=dtype, name=model_name)
