"""hw.workload: op costs against torch's FlopCounterMode, bytes, meta-device tracing, errors."""
import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hw.workload import trace
from neurosim.cli import main
from neurosim.errors import NeurosimError

MAC_KINDS = ("conv", "linear", "matmul", "attention")


class Attn(nn.Module):
    def __init__(self, d=32, h=4, causal=True):
        super().__init__()
        self.qkv, self.proj, self.h, self.causal = nn.Linear(d, 3 * d), nn.Linear(d, d), h, causal

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)

    def forward(self, x):
        return F.relu(x + self.b(self.a(x)))


CASES = {
    "conv_stack": (lambda: nn.Sequential(nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                         nn.Conv2d(16, 32, 3, dilation=2), nn.Flatten(), nn.LazyLinear(10)),
                   lambda: (torch.randn(2, 3, 32, 32),)),
    "grouped_depthwise": (lambda: nn.Sequential(nn.Conv2d(8, 16, 3, groups=4), nn.Conv2d(16, 16, 3, groups=16),
                                                nn.Conv2d(16, 8, 1)), lambda: (torch.randn(3, 8, 12, 10),)),
    "transposed_conv": (lambda: nn.Sequential(nn.ConvTranspose2d(8, 4, 2, stride=2), nn.Conv1d(4, 4, 3)
                                              if False else nn.Identity()), lambda: (torch.randn(1, 8, 7, 7),)),
    "conv1d": (lambda: nn.Conv1d(4, 6, 5, padding=2), lambda: (torch.randn(2, 4, 30),)),
    "mlp": (lambda: nn.Sequential(nn.Linear(20, 64), nn.GELU(), nn.Linear(64, 5)), lambda: (torch.randn(7, 20),)),
    "attention": (lambda: Attn(), lambda: (torch.randn(2, 9, 32),)),
    "mha": (lambda: nn.MultiheadAttention(32, 4, batch_first=True), lambda: (torch.randn(2, 6, 32),) * 3),
    "mha_seq_first": (lambda: nn.MultiheadAttention(32, 4), lambda: (torch.randn(6, 2, 32),) * 3),
    "residual_bn": (lambda: Residual(), lambda: (torch.randn(2, 8, 6, 6),)),
    "bmm": (lambda: _Bmm(), lambda: (torch.randn(3, 4, 5), torch.randn(3, 5, 6))),
}


class _Bmm(nn.Module):
    def forward(self, a, b):
        return torch.bmm(a, b) @ torch.ones(6, 2)


def _build(case):
    make, inputs = CASES[case]
    torch.manual_seed(0)
    m, x = make(), inputs()
    with torch.no_grad():
        m(*x)  # materialise lazy modules
    return m.eval(), x


@pytest.mark.parametrize("case", sorted(CASES))
def test_flops_equal_flopcounter_for_matmul_and_conv(case):
    """FlopCounterMode (torch's own counter, on real CPU tensors) equals 2 x our MACs.

    FlopCounterMode has no formula for CPU's fused kernels (flash attention, MHA's inference fast
    path), so there attention runs on the math backend and modules in train mode (no dropout here).
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    m, x = _build(case)
    with FlopCounterMode(display=False) as fc, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        m.train()(*x)
    m.eval()
    w = trace(m, x)
    ours = sum(o.flops for o in w.ops if o.kind in MAC_KINDS)
    assert ours == 2 * sum(o.macs for o in w.ops)
    assert ours == fc.get_total_flops() > 0


@pytest.mark.parametrize("cell,gates", [(nn.LSTM, 4), (nn.GRU, 3)])
def test_recurrent_macs_match_the_gate_formula(cell, gates):
    """FlopCounterMode sees CPU's fused RNN kernel as one op with no formula; check the algebra instead:
    per step and sample, gates x hidden x (input + hidden) MACs (Hochreiter 1997; Cho et al. 2014)."""
    t, b, i, h = 5, 2, 10, 16
    w = trace(cell(i, h, batch_first=True), (torch.randn(b, t, i),))
    assert w.macs == t * b * gates * h * (i + h)


def test_conv_geometry_and_gemm_view():
    m = nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=4)
    w = trace(m, (torch.randn(2, 16, 15, 15),))
    (op,) = w.ops
    a = op.attrs
    assert (a["N"], a["C"], a["H"], a["K"], a["R"], a["S"], a["OH"], a["OW"], a["groups"]) == (2, 16, 15, 32, 3, 3, 8, 8, 4)
    assert a["stride"] == [2, 2] and a["pad"] == [1, 1]
    ((mm, kk, nn_, count),) = op.gemms()
    assert (mm, kk, nn_, count) == (2 * 8 * 8, 4 * 9, 8, 4)
    assert mm * kk * nn_ * count == op.macs
    assert op.param_bytes == (32 * 4 * 9 + 32) * 4
    assert op.read_bytes == 2 * 16 * 15 * 15 * 4 and op.write_bytes == 2 * 32 * 8 * 8 * 4


def test_attention_is_one_fused_op_with_two_gemms():
    m, x = _build("attention")
    w = trace(m, x)
    att = w.filter(["attention"])
    assert len(att) == 1 and att[0].attrs == dict(B=2, H=4, L=9, S=9, E=8, Ev=8)
    assert sum(mm * k * n * c for mm, k, n, c in att[0].gemms()) == att[0].macs
    assert att[0].write_bytes == 2 * 9 * 32 * 4  # the L x S score matrix is never written
    assert not w.filter(["softmax"])  # its math decomposition is not double counted


def test_linear_vs_matmul_kind_and_param_bytes_counted_once_for_broadcast():
    m, x = _build("mha")
    w = trace(m, x)
    kinds = w.kinds()
    assert kinds["linear"] >= 2 and kinds["attention"] + kinds["matmul"] >= 1
    # MHA's input projection weight is broadcast over the batch: bytes of the weight slice, not per copy
    for o in w.filter(["linear"]):
        assert o.param_bytes <= (3 * 32 * 32 + 3 * 32) * 4
        assert o.attrs["B"] == 1 and o.attrs["K"] == 32  # one GEMM over all tokens, not a batch of 2-row ones
        assert o.attrs["M"] * o.attrs["K"] * o.attrs["N"] == o.macs


def test_tied_weights_counted_once_and_meta_module_untouched():
    emb = nn.Embedding(100, 16)
    head = nn.Linear(16, 100, bias=False)
    head.weight = emb.weight
    m = nn.Sequential(emb, head)
    w = trace(m, (torch.randint(0, 100, (2, 7)),))
    assert w.params == 1600 and w.param_bytes == 6400
    e = w.filter(["embedding"])[0]
    assert e.param_bytes == 2 * 7 * 16 * 4  # only the gathered rows
    assert m[0].weight.device.type == "cpu"  # the user's module keeps its weights


def test_meta_model_allocates_nothing_and_dtype_scales_bytes():
    with torch.device("meta"):
        big = nn.Sequential(*[nn.Linear(8192, 8192) for _ in range(8)])  # 2.1 GB in fp32 if allocated
        x = torch.empty(4, 8192)
    w32 = trace(big, (x,))
    w16 = trace(big, (x,), dtype="bf16")
    w8 = trace(big, (x,), dtype="int8")
    assert w32.params == 8 * (8192 * 8192 + 8192)
    assert w32.param_bytes == 2 * w16.param_bytes == 4 * w8.param_bytes
    assert w32.activation_bytes == 2 * w16.activation_bytes == 4 * w8.activation_bytes
    assert w32.macs == w16.macs == 8 * 4 * 8192 * 8192
    assert w16.dtype == "bfloat16" and w8.dtype == "int8"


def test_quantised_dtypes_rescale_floating_bytes_only():
    """int8/fp8 count weights and activations at one byte; int64 token ids and indices keep 8."""
    emb, head = nn.Embedding(100, 16), nn.Linear(16, 100)
    m = nn.Sequential(emb, head)
    ids = torch.randint(0, 100, (2, 7))
    w32, w8 = trace(m, (ids,)), trace(m, (ids,), dtype="int8")
    e32, e8 = w32.filter(["embedding"])[0], w8.filter(["embedding"])[0]
    assert e32.read_bytes == e8.read_bytes == 2 * 7 * 8  # the int64 ids, not scaled
    assert e8.param_bytes == 2 * 7 * 16 and e32.param_bytes == 4 * e8.param_bytes  # gathered rows at 1 byte
    assert e8.write_bytes == 2 * 7 * 16 and e8.dtype == "int8"
    lin32, lin8 = w32.filter(["linear"])[0], w8.filter(["linear"])[0]
    assert lin32.bytes == 4 * lin8.bytes and w8.param_bytes * 4 == w32.param_bytes


def test_an_op_is_either_free_or_memory():
    from hw.workload import _FREE, _MEMORY

    assert not _FREE & _MEMORY, _FREE & _MEMORY


def test_impossible_shape_names_the_layer():
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(100, 10))
    with pytest.raises(NeurosimError, match=r"Linear '2' failed"):
        trace(m, (torch.randn(1, 3, 8, 8),))
    with pytest.raises(NeurosimError, match="unknown dtype 'fp7'"):
        trace(m, (torch.randn(1, 3, 12, 12),), dtype="fp7")


def test_totals_json_and_dataframe_agree():
    m, x = _build("conv_stack")
    w = trace(m, x)
    d = json.loads(w.to_json())
    df = w.to_dataframe()
    assert d["macs"] == df["macs"].sum() == w.macs
    assert d["activation_bytes"] == (df["read_bytes"] + df["write_bytes"]).sum()
    assert len(d["layers"]) == len(df) == len(w.ops)
    assert {"params", "macs", "flops", "param_bytes", "activation_bytes", "layers"} <= set(d)
    assert w.by_module()["macs"].sum() == w.macs


def test_cli_bad_input_is_one_line_exit_2(capsys):
    assert main(["profile", "no_such_model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'no_such_model'; valid:" in err[0]
    assert main(["profile", "resnet18", "--input-shape", "3xfoo"]) == 2
    assert capsys.readouterr().err.strip() == "neurosim profile: error: --input-shape '3xfoo' must be integers like 3x224x224"
    assert main(["profile"]) == 2  # a usage error: argparse's one line, returned (not raised) by main()
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "neurosim.cli", "profile", "nope"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
