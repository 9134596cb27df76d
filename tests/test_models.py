"""The model zoo: registry behaviour, published parameter counts, meta-device builds, cell/attention/MoE semantics."""
import functools
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import models
from models import registry
from models.activations import activation, activation_names, make_activation
from neurosim.errors import NeurosimError, UnknownNameError

GOLDEN = json.loads((Path(__file__).parent / "golden" / "param_counts.json").read_text())
REFERENCES = sorted(k for k in GOLDEN if not k.startswith("_"))
# Models that are small enough to run for real on the CPU in a test.
SMALL = ["mlp", "lenet5", "resnet_tiny", "vit_tiny", "bert_tiny", "gpt_tiny", "lstm", "gru", "unet", "gcn", "moe_tiny"]


@functools.lru_cache(maxsize=None)
def meta_model(name: str) -> nn.Module:
    with torch.device("meta"):
        return models.create(name).eval()


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())  # parameters() yields a tied weight once


# ---- registry ---------------------------------------------------------------------------------------

def test_names_cover_the_issue_list():
    required = {"alexnet", "vgg11", "vgg16", "resnet18", "resnet34", "resnet50", "mobilenet_v2", "vit_b_16", "bert_base",
                "gpt2", "gpt3_175b", "mlp", "lenet5", "resnet_tiny", "vit_tiny", "bert_tiny", "gpt_tiny", "lstm", "gru",
                "unet", "gcn", "moe_tiny", "mixtral_8x7b"}
    assert required <= set(models.names())
    assert models.names() == sorted(models.names())
    assert set(models.names("cnn")) >= {"alexnet", "resnet50", "lenet5"} and "gpt2" not in models.names("cnn")


def test_duplicate_name_raises():
    name = "_test_duplicate_model"
    try:
        models.register(name, family="mlp", inputs=registry.vector_inputs())(lambda in_features=4: nn.Linear(in_features, 2))
        with pytest.raises(ValueError, match="already registered"):
            models.register(name, family="mlp", inputs=registry.vector_inputs())(lambda: nn.Identity())
        with pytest.raises(ValueError, match="already registered"):
            models.register("resnet18", family="cnn", inputs=registry.image_inputs())(lambda: nn.Identity())
    finally:
        registry._REGISTRY.pop(name, None)


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownNameError) as e:
        models.create("resnet19")
    assert "resnet18" in str(e.value) and "gpt2" in str(e.value)


def test_bad_override_names_the_allowed_options():
    with pytest.raises(NeurosimError) as e:
        models.create("mlp", hiden=(10,))
    msg = str(e.value)
    assert "hiden" in msg and "hidden" in msg and "in_features" in msg


def test_config_layers_builder_defaults_entry_defaults_and_overrides():
    cfg = models.config("vgg11", num_classes=10)
    assert cfg["config"] == "A" and cfg["num_classes"] == 10 and cfg["in_channels"] == 3
    assert models.config("gpt3_175b")["d_model"] == 12288 and models.config("gpt2")["d_model"] == 768
    m = models.create("mlp", in_features=64, hidden=(32,))
    assert m.neurosim_config == {"name": "mlp", "overrides": {"in_features": 64, "hidden": (32,)}}
    assert [l.out_features for l in m if isinstance(l, nn.Linear)] == [32, 10]


# ---- published parameter counts ------------------------------------------------------------------------

@pytest.mark.parametrize("name", REFERENCES)
def test_reference_parameter_counts_match_published(name):
    ref = GOLDEN[name]
    assert ref["_source"]
    got = n_params(meta_model(name))
    tol = ref.get("params_rel_tol", 0)
    if tol:
        assert abs(got - ref["params"]) <= tol * ref["params"], f"{name}: {got:,} vs {ref['params']:,}"
    else:
        assert got == ref["params"], f"{name}: {got:,} vs {ref['params']:,} published"
    if got < 1e9:  # (the giants are built once above; param_count builds again)
        assert models.param_count(name) == got


def test_every_reference_entry_names_its_source_and_is_in_the_golden_file():
    refs = {n for n in models.names() if models.entry(n).reference}
    assert refs == set(REFERENCES)


def test_gpt2_ties_lm_head_to_token_embedding():
    m = meta_model("gpt2")
    assert m.head.weight is m.tok_emb.weight
    untied = n_params(models.create("gpt_tiny", tie_embeddings=False))
    assert untied == n_params(models.create("gpt_tiny")) + 256 * 64


# ---- every model on the meta device --------------------------------------------------------------------

def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


# The giants' forward runs with 2 of their layers (identical layers; meta ops cost ~0.1 s per GPT-3 layer
# in torch's Python meta kernels); their full-size build is checked above and the profiler's tests trace
# GPT-3 175B whole at seq 2048.
SHALLOW = {"gpt3_175b": {"n_layers": 2}, "mixtral_8x7b": {"n_layers": 2}}


@pytest.mark.parametrize("name", models.names())
def test_builds_and_runs_forward_on_meta(name):
    if name in SHALLOW:
        with torch.device("meta"):
            m = models.create(name, **SHALLOW[name]).eval()
    else:
        m = meta_model(name)
    assert all(p.is_meta for p in m.parameters())
    with torch.device("meta"):
        inputs = models.example_inputs(name, batch=2, seq=32, **SHALLOW.get(name, {}))  # seq: sequence models
        out = _outputs(m(*inputs))
    assert all(o.is_meta for o in out)
    assert [tuple(o.shape) for o in out] == _expected_output_shapes(name, inputs)


def _expected_output_shapes(name, inputs) -> list[tuple]:
    """What the model's config promises: classifier logits, segmentation maps, LM logits, encoder states."""
    cfg, lead = models.config(name), inputs[0].shape[0]  # batch, or nodes for the GCN
    if models.entry(name).family == "unet":
        return [(lead, cfg["num_classes"], *inputs[0].shape[2:])]
    if cfg.get("num_classes"):
        return [(lead, cfg["num_classes"])]
    seq = inputs[0].shape[1]
    if name.startswith("bert"):  # encoder: token states and the pooled [CLS] state
        return [(lead, seq, cfg["d_model"]), (lead, cfg["d_model"])]
    return [(lead, seq, cfg["vocab_size"])]  # decoder LM logits


# ---- small models run for real ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", SMALL)
def test_small_models_run_on_cpu(name):
    torch.manual_seed(0)
    over = {"gcn": {"num_nodes": 64}, "unet": {"image_size": 32}}.get(name, {})
    m = models.create(name, **over).eval()
    inputs = models.example_inputs(name, batch=2, **over)
    with torch.no_grad():
        out = _outputs(m(*inputs))
    assert all(torch.isfinite(o).all() for o in out)
    if name not in ("gcn", "moe_tiny"):  # per-sample models: batch rows are independent in eval mode
        with torch.no_grad():
            first = _outputs(m(*(x[:1] for x in inputs)))
        for a, b in zip(out, first):
            torch.testing.assert_close(a[:1], b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "lenet5", "resnet_tiny", "vit_tiny"])
def test_conversion_models_fit_digits_and_mnist_shapes(name):
    for size, ch in ((28, 1), (8, 1)):
        if name == "lenet5" and size == 8:
            with pytest.raises(NeurosimError, match="28 or 32"):
                models.create(name, image_size=size)
            continue
        over = {"in_features": size * size} if name == "mlp" else {"image_size": size, "in_channels": ch}
        m = models.create(name, **over).eval()
        with torch.no_grad():
            assert m(torch.rand(3, ch, size, size)).shape == (3, 10)


def test_small_cnns_use_one_activation_module_per_use_and_flatten():
    import torch.fx

    for name in ("lenet5", "resnet_tiny", "mlp"):
        m = models.create(name)
        acts = [mod for mod in m.modules() if isinstance(mod, nn.ReLU)]
        assert len(acts) == len({id(a) for a in acts}) > 0
        g = torch.fx.symbolic_trace(m)  # plain traceable: no data-dependent control flow
        assert any(n.op == "call_function" and "add" in str(n.target) for n in g.graph.nodes) == (name == "resnet_tiny")
    lenet = models.create("lenet5", activation="gelu", pool="avg", batchnorm=True)
    kinds = {type(mod) for mod in lenet.modules()}
    assert {nn.GELU, nn.AvgPool2d, nn.BatchNorm2d, nn.Flatten} <= kinds and nn.ReLU not in kinds


# ---- semantics ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_cells_equal_torch_nn(cell):
    """Our explicit cells compute exactly what nn.LSTM / nn.GRU compute with the same weights."""
    torch.manual_seed(0)
    ours = models.create(cell, input_size=3, hidden_size=5, num_layers=2, num_classes=0)
    ref = (nn.LSTM if cell == "lstm" else nn.GRU)(3, 5, num_layers=2, batch_first=True)
    with torch.no_grad():
        for i, layer in enumerate(ours.layers):
            getattr(ref, f"weight_ih_l{i}").copy_(layer.ih.weight)
            getattr(ref, f"bias_ih_l{i}").copy_(layer.ih.bias)
            getattr(ref, f"weight_hh_l{i}").copy_(layer.hh.weight)
            getattr(ref, f"bias_hh_l{i}").copy_(layer.hh.bias)
        x = torch.randn(4, 7, 3)
        torch.testing.assert_close(ours(x), ref(x)[0], rtol=1e-5, atol=1e-6)
    assert n_params(ours) == n_params(ref)


@pytest.mark.parametrize("name,over", [("gpt_tiny", {}), ("moe_tiny", {"capacity_factor": 2.0})])
def test_decoders_are_causal(name, over):
    """(With capacity limits a later token's first choice can take the slot of an earlier token's second
    choice, as in Switch/GShard; capacity_factor = E/k is dropless and exactly causal.)"""
    torch.manual_seed(0)
    m = models.create(name, **over).eval()
    ids = torch.randint(0, 256, (1, 12))
    changed = ids.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 256
    with torch.no_grad():
        a, b = m(ids), m(changed)
    torch.testing.assert_close(a[:, :8], b[:, :8], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_bert_is_bidirectional_and_classifies_with_num_classes():
    torch.manual_seed(0)
    m = models.create("bert_tiny", vocab_size=10, num_classes=3).eval()
    ids = torch.randint(0, 10, (2, 6))
    with torch.no_grad():
        out = m(ids)
        changed = ids.clone()
        changed[:, -1] = (changed[:, -1] + 1) % 10
        assert out.shape == (2, 3) and not torch.allclose(out, m(changed))  # the first token sees the last
    with pytest.raises(NeurosimError, match="max_seq_len"):
        m(torch.zeros(1, 513, dtype=torch.long))


def test_grouped_query_attention_and_rope_keep_shapes():
    from models.transformer import SelfAttention

    att = SelfAttention(32, 8, causal=True, n_kv_heads=2, rope=True)
    assert att.qkv.out_features == 32 + 2 * 2 * 4
    assert att(torch.randn(2, 5, 32)).shape == (2, 5, 32)


def _moe_reference(ff, x):
    """Token-by-token top-k mixture without capacity limits."""
    probs = torch.softmax(ff.router(x), -1)
    gate, idx = probs.topk(ff.top_k, -1)
    gate = gate / gate.sum(-1, keepdim=True) if ff.top_k > 1 else gate
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(ff.top_k):
            e = idx[t, j]
            h = x[t] @ ff.w1[e]
            h = torch.nn.functional.silu(h) * (x[t] @ ff.w3[e]) if ff.swiglu else ff.act(h)
            out[t] += gate[t, j] * (h @ ff.w2[e])
    return out


@pytest.mark.parametrize("k,act", [(1, "relu"), (2, "swiglu")])
def test_moe_routing_equals_token_by_token_mixture_when_nothing_is_dropped(k, act):
    from models.moe import MoEFeedForward

    torch.manual_seed(0)
    ff = MoEFeedForward(8, 16, num_experts=4, top_k=k, capacity_factor=4.0 / k, expert_activation=act)
    x = torch.randn(10, 8)
    with torch.no_grad():
        torch.testing.assert_close(ff(x), _moe_reference(ff, x), rtol=1e-5, atol=1e-6)
        assert ff.capacity(10) == 10  # every expert can take every token


def test_moe_drops_assignments_beyond_capacity_in_choice_major_order():
    from models.moe import MoEFeedForward

    torch.manual_seed(0)
    ff = MoEFeedForward(4, 8, num_experts=4, top_k=1, capacity_factor=1.0, expert_activation="relu")
    with torch.no_grad():
        ff.router.weight.zero_()
        ff.router.weight[0, 0] = 10.0  # every token with x[0] > 0 prefers expert 0
        x = torch.randn(8, 4).abs() + 0.1
        y = ff(x)
        cap = ff.capacity(8)
        assert cap == 2
        ref = _moe_reference(ff, x)
        torch.testing.assert_close(y[:cap], ref[:cap])  # the first two tokens fit
        assert (y[cap:] == 0).all()  # the rest overflow expert 0 and are dropped
        assert ff.aux_loss == pytest.approx(4 * 1.0 * ff.router(x).softmax(-1)[:, 0].mean().item(), rel=1e-5)


def test_moe_expert_macs_count_only_routed_experts():
    from hw.workload import trace

    cfg = dict(d_model=32, d_ff=64, num_experts=8, top_k=2, n_layers=1)
    with torch.device("meta"):
        m = models.create("moe_tiny", **cfg).eval()
        ids = models.example_inputs("moe_tiny", batch=2, seq=16)
    w = trace(m, ids)
    expert = sum(o.macs for o in w.ops if o.aten == "bmm" and o.name.endswith("moe"))
    tokens = 2 * 16
    assert expert == tokens * cfg["top_k"] * 3 * 32 * 64  # SwiGLU expert: three d x ff products per token
    dense_all = tokens * cfg["num_experts"] * 3 * 32 * 64
    assert expert == dense_all * cfg["top_k"] // cfg["num_experts"]


def test_normalized_adjacency_matches_definition():
    import numpy as np

    from models.gcn import normalized_adjacency

    edges = torch.tensor([[0, 1, 2], [1, 2, 0]])
    a_hat = normalized_adjacency(edges, 4).numpy()
    a = np.zeros((4, 4))
    for s, d in edges.T.tolist():
        a[s, d] = a[d, s] = 1
    a += np.eye(4)
    d = np.diag(a.sum(1) ** -0.5)
    np.testing.assert_allclose(a_hat, d @ a @ d, rtol=1e-6)
    assert a_hat[3, 3] == pytest.approx(1.0)  # isolated node: only its self-loop
    with pytest.raises(NeurosimError, match=r"\[2, E\]"):
        normalized_adjacency(torch.zeros(3, 2, dtype=torch.long), 4)


def test_gcn_propagates_only_along_edges():
    torch.manual_seed(0)
    m = models.create("gcn", in_features=5, hidden=(4,), num_classes=3, dropout=0.0).eval()
    from models.gcn import normalized_adjacency

    adj = normalized_adjacency(torch.tensor([[0, 1, 2], [1, 2, 0]]), 6)  # nodes 3..5 are isolated
    x = torch.randn(6, 5)
    x2 = x.clone()
    x2[4] += 1.0
    with torch.no_grad():
        a, b = m(x, adj), m(x2, adj)
    torch.testing.assert_close(a[[0, 1, 2, 3, 5]], b[[0, 1, 2, 3, 5]])
    assert not torch.allclose(a[4], b[4])


def test_unet_output_matches_input_size_and_checks_divisibility():
    m = models.create("unet", image_size=32, depth=2, base_width=4, num_classes=3).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    with pytest.raises(NeurosimError, match="divisible"):
        models.create("unet", image_size=36, depth=3)


# ---- activations ------------------------------------------------------------------------------------------

def test_activation_registry():
    assert {"relu", "gelu", "gelu_tanh"} <= set(activation_names())
    r1, r2 = make_activation("relu"), make_activation("relu")
    assert isinstance(r1, nn.ReLU) and r1 is not r2
    with pytest.raises(UnknownNameError, match="relu"):
        make_activation("nope")
    with pytest.raises(ValueError, match="already registered"):
        activation("relu")(nn.ReLU)
    name = "_test_square"
    try:
        @activation(name)
        class Square(nn.Module):
            def __init__(self, scale: float = 1.0):
                super().__init__()
                self.scale = scale

            def forward(self, x):
                return self.scale * x * x

        m = models.create("mlp", in_features=4, hidden=(3,), activation=name)
        assert any(isinstance(mod, Square) for mod in m.modules())
        assert make_activation(name, scale=2.0)(torch.tensor(3.0)) == 18.0
        with pytest.raises(NeurosimError, match="bad options"):
            make_activation(name, nope=1)
    finally:
        from models import activations

        activations._ACTIVATIONS.pop(name, None)


def test_rmsnorm_fallback_equals_torch():
    from models.moe import _RMSNorm

    x = torch.randn(3, 8)
    ours = _RMSNorm(8)
    with torch.no_grad():
        ours.weight.uniform_()
        ref = nn.RMSNorm(8, eps=1e-5)
        ref.weight.copy_(ours.weight)
        torch.testing.assert_close(ours(x), ref(x))


@pytest.mark.parametrize("name", ["mlp", "lenet5", "resnet_tiny", "vit_tiny", "unet", "bert_tiny", "gpt_tiny"])
def test_small_feedforward_models_trace_with_torch_fx(name):
    """Conversion traces models with torch.fx: no control flow on traced values (recurrent and MoE models,
    whose loops and capacities depend on the input's shape, are not fx-traceable)."""
    import torch.fx

    torch.manual_seed(0)
    over = {"unet": {"image_size": 32}, "bert_tiny": {"vocab_size": 50, "num_classes": 3}}.get(name, {})
    m = models.create(name, **over).eval()
    g = torch.fx.symbolic_trace(m)
    inputs = models.example_inputs(name, batch=2, seq=8, **over)
    with torch.no_grad():
        for a, b in zip(_outputs(m(*inputs)), _outputs(g(*inputs))):
            torch.testing.assert_close(a, b)
