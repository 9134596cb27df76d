"""Transformer IR operators (issue 13): their step rules against theory, checks and save/load."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurosim.backends.reference import reference_run
from neurosim.errors import NeurosimError
from neurosim.ir import (Activation, Add, Concat, Constant, Embedding, LayerNorm, Linear, MatMul, Neurons, Readout,
                         Reshape, Slice, Softmax, SpikingNetwork, TokenLinear, Transpose)
from tests.backend_nets import token_inputs, zoo_transformer


def _qcfs(x, lam, L):
    return np.clip(np.floor(x / lam * L + 0.5) / L, 0, 1) * lam


def _quantised_stream(nodes, name, src, lam, shape):
    """x -> IF population at scale lam (threshold 1, v_init 1/2) -> lam * spikes (a QCFS quantiser)."""
    nodes[f"{name}_in"] = Add((src,), weights=[np.float32(1.0 / lam)])
    nodes[f"{name}_n"] = Neurons(f"{name}_in", shape=shape, threshold=1.0, v_init=0.5)
    nodes[name] = Add((f"{name}_n",), weights=[np.float32(lam)])


def test_time_average_of_output_is_f_of_time_average_of_input_at_every_t():
    """The accumulate-and-difference rule: sum_{s<=t} y_s = t f(S_t / t) for spiking (uneven) inputs."""
    net = zoo_transformer()
    x = token_inputs(net, 3)
    T = 9
    rec = ("q", "k", "scores", "probs", "p_s", "v", "att", "res", "act", "x0", "ln")
    _, _, steps = reference_run(net, x, T, record=rec)
    mean = {k: np.cumsum(v, 0) / np.arange(1, T + 1).reshape((T,) + (1,) * (v.ndim - 1)) for k, v in steps.items()}
    assert np.ptp(steps["q"], axis=0).max() > 0  # the inputs really vary in time
    sc = net.nodes["scores"].scale
    np.testing.assert_allclose(mean["scores"], sc * mean["q"] @ np.swapaxes(mean["k"], -1, -2), atol=1e-9)
    masked = np.where(np.triu(np.ones((4, 4), bool), 1), -np.inf, mean["scores"])
    sm = np.exp(masked - masked.max(-1, keepdims=True))
    np.testing.assert_allclose(mean["probs"], sm / sm.sum(-1, keepdims=True), atol=1e-9)
    np.testing.assert_allclose(mean["att"], mean["p_s"] @ mean["v"], atol=1e-9)
    gelu = torch.nn.functional.gelu(torch.as_tensor(mean["res"])).numpy()
    np.testing.assert_allclose(mean["act"], gelu, atol=1e-9)
    ln = net.nodes["ln"]
    want = torch.nn.functional.layer_norm(torch.as_tensor(mean["x0"]), (8,), torch.as_tensor(ln.weight, dtype=torch.float64),
                                          torch.as_tensor(ln.bias, dtype=torch.float64), ln.eps).numpy()
    np.testing.assert_allclose(mean["ln"], want, atol=1e-9)
    # the causal mask: a query never attends to a later key
    assert np.all(steps["probs"][..., np.triu(np.ones((4, 4), bool), 1)] == 0)


@pytest.mark.parametrize("L", [4, 8])
def test_attention_equals_the_quantised_ann_at_T_equal_L(L):
    """Q, K, V quantised by IF populations fed constant currents, softmax quantised again: at T = L the
    SNN's output equals the quantised ANN (QCFS with L levels before each matmul) exactly."""
    rng = np.random.default_rng(0)
    n, d = 5, 4
    wq, wk, wv = (rng.normal(0, 1, (d, d)) for _ in range(3))
    lam, lam_p = 2.0, 1.0
    nodes = {}
    for nm, w in (("q", wq), ("k", wk), ("v", wv)):
        nodes[f"{nm}_lin"] = TokenLinear("input", weight=w)
        _quantised_stream(nodes, nm, f"{nm}_lin", lam, (n, d))
    nodes["s"] = MatMul(("q", "k"), transpose_b=True, scale=0.5)
    nodes["p"] = Softmax("s")
    _quantised_stream(nodes, "pq", "p", lam_p, (n, n))
    nodes["o"] = MatMul(("pq", "v"))
    nodes["flat"] = Reshape("o", shape=(n * d,))
    nodes["out"] = Linear("flat", weight=np.eye(n * d))
    net = SpikingNetwork((n, d), nodes, Readout("out", "membrane"))
    x = rng.uniform(0, 1, (6, n, d))
    out, _ = reference_run(net, x, L)
    q, k, v = (_qcfs(x @ w.T, lam, L) for w in (wq, wk, wv))
    s = 0.5 * q @ np.swapaxes(k, -1, -2)
    p = np.exp(s - s.max(-1, keepdims=True))
    p = _qcfs(p / p.sum(-1, keepdims=True), lam_p, L)
    np.testing.assert_allclose(out, (p @ v).reshape(6, -1), atol=1e-9)
    out2, _ = reference_run(net, x, 2 * L + 1)  # other T: not the L-level ANN any more
    assert np.abs(out2 - (p @ v).reshape(6, -1)).max() > 1e-3


def test_save_load_round_trip_keeps_every_transformer_node(tmp_path):
    net = zoo_transformer()
    back = SpikingNetwork.load(net.save(tmp_path / "t.npz"))
    assert net.equals(back)
    x = token_inputs(net, 2)
    np.testing.assert_array_equal(net.run(x, 6, backend="reference").output, back.run(x, 6, backend="reference").output)


def test_embedding_refuses_ids_that_are_not_tokens():
    net = zoo_transformer()
    x = token_inputs(net, 2)
    for bad in (0.5, -1.0, 11.0):
        y = x.copy()
        y[0, 1] = bad
        for backend in ("reference", "snntorch"):
            with pytest.raises(NeurosimError, match=r"Embedding reads token ids, integers in \[0, 11\)"):
                net.run(y, 3, backend=backend)


@pytest.mark.parametrize("make, msg", [
    (lambda: TokenLinear("input", weight=np.ones((3, 4))).out_shape([(4,)]), "at least one token axis"),
    (lambda: MatMul(("a", "b")).out_shape([(2, 3), (4, 5)]), "inner sizes differ"),
    (lambda: MatMul(("a", "b")).out_shape([(2, 2, 3), (3, 3, 5)]), "equal leading axes"),
    (lambda: Softmax("a", causal=True).out_shape([(3, 4)]), "square"),
    (lambda: LayerNorm("a", weight=np.ones(3)).out_shape([(2, 4)]), "over 3 features"),
    (lambda: Activation("a", fn="relu"), "fn 'relu' unknown"),
    (lambda: Reshape("a", shape=(5,)).out_shape([(2, 3)]), "cannot turn"),
    (lambda: Transpose("a", perm=(0, 0)), "permutation"),
    (lambda: Slice("a", axis=0, start=2, stop=5).out_shape([(4, 2)]), "within axis 0"),
    (lambda: Concat(("a", "b"), axis=0).out_shape([(1, 3), (2, 4)]), "differ outside axis 0"),
    (lambda: Embedding("input", weight=np.ones(3)), "2-D"),
    (lambda: Constant(("input",), value=np.ones(2)), "takes 0 input"),
    (lambda: LayerNorm("a", weight=np.ones(3), eps=0.0), "eps must be positive"),
])
def test_bad_nodes_are_one_clear_error(make, msg):
    with pytest.raises(NeurosimError, match=msg):
        make()


def test_nir_export_refuses_transformer_nodes_by_name():
    with pytest.raises(NeurosimError, match="no NIR mapping for Embedding"):
        zoo_transformer().to_nir()
