"""Small hand-built IR networks for the backend tests (random weights scaled so that every layer
fires at useful rates). Independent of the converter so the backends can be tested on their own."""
from __future__ import annotations

import numpy as np

from neurosim.ir import (Add, AvgPool2d, Conv2d, Encoding, Flatten, Linear, Neurons, Readout, SpikeMaxPool2d,
                         SpikingNetwork, SumPool2d)


def mlp(seed: int = 0, n_in: int = 16, hidden: int = 24, n_out: int = 5, encoding: str = "direct",
        per_channel: bool = False, leak: float = 1.0, signed: bool = False) -> SpikingNetwork:
    rng = np.random.default_rng(seed)
    th = rng.uniform(0.6, 1.4, hidden).astype(np.float32) if per_channel else 1.0
    nodes = {
        "fc1": Linear("input", weight=rng.normal(0, 1.2 / np.sqrt(n_in), (hidden, n_in)), bias=rng.normal(0, .1, hidden)),
        "n1": Neurons("fc1", shape=(hidden,), threshold=th, v_init=np.asarray(th) * 0.5, leak=leak, signed=signed),
        "fc2": Linear("n1", weight=rng.normal(0, 2.0 / np.sqrt(hidden), (hidden, hidden)), bias=rng.normal(0, .05, hidden)),
        "n2": Neurons("fc2", shape=(hidden,), threshold=1.0, v_init=0.5, signed=signed),
        "fc3": Linear("n2", weight=rng.normal(0, 1.0 / np.sqrt(hidden), (n_out, hidden)), bias=rng.normal(0, .1, n_out)),
    }
    return SpikingNetwork(input_shape=(n_in,), nodes=nodes, readout=Readout("fc3", "membrane"),
                          encoding=Encoding(encoding, 1.0))


def cnn(seed: int = 0, hw: int = 8, encoding: str = "direct", signed: bool = False) -> SpikingNetwork:
    """conv -> IF -> avgpool -> conv -> IF (+ residual from a 1x1 path) -> maxpool -> fc -> IF (spike readout).

    ``signed``: every population is signed (-1 spikes; the max-pool then passes signed spikes too)."""
    rng = np.random.default_rng(seed)
    c1, c2 = 4, 6
    nodes = {
        "conv1": Conv2d("input", weight=rng.normal(0, 0.6, (c1, 1, 3, 3)), bias=rng.normal(0, .05, c1), padding=1),
        "n1": Neurons("conv1", shape=(c1, hw, hw), threshold=rng.uniform(.7, 1.3, (c1, 1, 1)), v_init=0.5, signed=signed),
        "pool1": AvgPool2d("n1", kernel_size=2),
        "conv2": Conv2d("pool1", weight=rng.normal(0, 0.5, (c2, c1, 3, 3)), bias=rng.normal(0, .05, c2), padding=1),
        "n2": Neurons("conv2", shape=(c2, hw // 2, hw // 2), threshold=1.0, v_init=0.5, signed=signed),
        "conv3": Conv2d("n2", weight=rng.normal(0, 0.4, (c2, c2, 3, 3)), padding=1),
        "skip": Conv2d("pool1", weight=rng.normal(0, 0.6, (c2, c1, 1, 1))),
        "res": Add(("conv3", "skip"), weights=[np.float32(1.0), rng.uniform(.5, 1.0, (c2, 1, 1))]),
        "n3": Neurons("res", shape=(c2, hw // 2, hw // 2), threshold=1.0, v_init=0.5, signed=signed),
        "mp": SpikeMaxPool2d("n3", kernel_size=2),
        "flat": Flatten("mp"),
        "fc": Linear("flat", weight=rng.normal(0, 0.8, (5, c2 * (hw // 4) ** 2)), bias=rng.normal(0, .05, 5)),
        "out": Neurons("fc", shape=(5,), threshold=1.0, v_init=0.5, signed=signed),
    }
    return SpikingNetwork(input_shape=(1, hw, hw), nodes=nodes, readout=Readout("out", "spike_count", 2.0),
                          encoding=Encoding(encoding, 1.0))


def leaky_zero_reset(seed: int = 0) -> tuple[SpikingNetwork, np.ndarray]:
    """A LIF population (leak 0.9) with hard reset to v_reset=0.1 and v_init=0.2, and 5 inputs."""
    rng = np.random.default_rng(seed)
    net = SpikingNetwork(input_shape=(6,), nodes={
        "fc": Linear("input", weight=rng.normal(0, .8, (7, 6))),
        "n": Neurons("fc", shape=(7,), threshold=0.8, leak=0.9, reset="zero", v_reset=0.1, v_init=0.2),
        "out": Linear("n", weight=rng.normal(0, 1, (3, 7)))}, readout=Readout("out"))
    return net, rng.uniform(0, 1, (5, 6)).astype(np.float32)


def zoo_direct(seed: int = 0) -> SpikingNetwork:
    """Every node kind on a direct-encoded (1, 8, 8) input, three branches summed into one membrane readout.

    * A, unsigned IF with subtractive reset: conv -> IF (per-channel threshold and v_init) -> AvgPool2d ->
      conv -> IF, a 1x1 conv shortcut from the pool, a residual Add with a per-channel (C, 1, 1) weight
      -> IF -> SpikeMaxPool2d of spikes -> Flatten -> Linear;
    * B, signed: conv -> signed IF -> SumPool2d -> conv -> Add with a (C,) weight on a (C, H, W) map with
      C == W (the IR broadcasts it along W, not per channel) -> signed LIF (leak 0.9, -1 spikes) -> Flatten
      -> Linear;
    * C, LIF with zero reset to v_reset = 0.1: Flatten(input) -> Linear (with bias) -> LIF -> Linear.
    """
    rng = np.random.default_rng(seed)
    c = 4
    nodes = {
        # A
        "a_conv1": Conv2d("input", weight=rng.normal(0, 0.6, (c, 1, 3, 3)), bias=rng.normal(0, .05, c), padding=1),
        "a_n1": Neurons("a_conv1", shape=(c, 8, 8), threshold=rng.uniform(.7, 1.3, (c, 1, 1)),
                        v_init=rng.uniform(.2, .5, (c, 1, 1))),
        "a_pool": AvgPool2d("a_n1", kernel_size=2),
        "a_conv2": Conv2d("a_pool", weight=rng.normal(0, 0.5, (c, c, 3, 3)), bias=rng.normal(0, .05, c), padding=1),
        "a_n2": Neurons("a_conv2", shape=(c, 4, 4), threshold=1.0, v_init=0.5),
        "a_conv3": Conv2d("a_n2", weight=rng.normal(0, 0.4, (c, c, 3, 3)), padding=1),
        "a_skip": Conv2d("a_pool", weight=rng.normal(0, 0.6, (c, c, 1, 1))),
        "a_res": Add(("a_conv3", "a_skip"), weights=[np.float32(1.0), rng.uniform(.5, 1.0, (c, 1, 1))]),
        "a_n3": Neurons("a_res", shape=(c, 4, 4), threshold=1.0, v_init=0.5),
        "a_mp": SpikeMaxPool2d("a_n3", kernel_size=2),
        "a_flat": Flatten("a_mp"),
        "a_fc": Linear("a_flat", weight=rng.normal(0, 0.8, (5, c * 4)), bias=rng.normal(0, .05, 5)),
        # B
        "b_conv": Conv2d("input", weight=rng.normal(0, 0.8, (c, 1, 3, 3)), bias=rng.normal(0, .05, c), padding=1),
        "b_n1": Neurons("b_conv", shape=(c, 8, 8), threshold=1.0, v_init=0.5, signed=True),
        "b_sum": SumPool2d("b_n1", kernel_size=2),
        "b_conv2": Conv2d("b_sum", weight=rng.normal(0, 0.5, (c, c, 3, 3)), padding=1),
        "b_scale": Add(("b_conv2",), weights=[rng.uniform(.3, 1.2, c).astype(np.float32)]),
        "b_n2": Neurons("b_scale", shape=(c, 4, 4), threshold=1.0, v_init=0.5, leak=0.9, signed=True),
        "b_flat": Flatten("b_n2"),
        "b_fc": Linear("b_flat", weight=rng.normal(0, 0.4, (5, c * 16))),
        # C
        "c_flat": Flatten("input"),
        "c_fc1": Linear("c_flat", weight=rng.normal(0, 0.4, (7, 64)), bias=rng.normal(0, .1, 7)),
        "c_n": Neurons("c_fc1", shape=(7,), threshold=0.8, leak=0.9, reset="zero", v_reset=0.1, v_init=0.2),
        "c_fc2": Linear("c_n", weight=rng.normal(0, 1, (5, 7))),
        "out": Add(("a_fc", "b_fc", "c_fc2"), weights=[np.float32(1.0), np.float32(0.5), np.float32(1.0)]),
    }
    return SpikingNetwork(input_shape=(1, 8, 8), nodes=nodes, readout=Readout("out", "membrane"))


def zoo_poisson(seed: int = 0) -> SpikingNetwork:
    """Poisson (+-1) input of shape (2, 4, 4) and a spike-count readout: a SpikeMaxPool2d reading the input
    itself -> Flatten -> Linear -> LIF (leak 0.8, subtractive reset); conv -> signed IF -> SpikeMaxPool2d of
    signed spikes -> Flatten -> Linear; both into one IF population (an Add with weights 1 and 0.5) read by
    its spike counts."""
    rng = np.random.default_rng(seed)
    nodes = {
        "mp_in": SpikeMaxPool2d("input", kernel_size=2),
        "flat_in": Flatten("mp_in"),
        "fa": Linear("flat_in", weight=rng.normal(0, 1.0, (6, 8)), bias=rng.normal(0, .05, 6)),
        "na": Neurons("fa", shape=(6,), threshold=1.0, v_init=0.5, leak=0.8),
        "fa2": Linear("na", weight=rng.normal(0, 1.2, (6, 6))),
        "conv": Conv2d("input", weight=rng.normal(0, 0.7, (3, 2, 3, 3)), padding=1),
        "nb": Neurons("conv", shape=(3, 4, 4), threshold=1.0, v_init=0.5, signed=True),
        "mp_b": SpikeMaxPool2d("nb", kernel_size=2),
        "flat_b": Flatten("mp_b"),
        "fb": Linear("flat_b", weight=rng.normal(0, 0.8, (6, 12))),
        "sum": Add(("fa2", "fb"), weights=[np.float32(1.0), np.float32(0.5)]),
        "out": Neurons("sum", shape=(6,), threshold=1.0, v_init=0.5),
    }
    return SpikingNetwork(input_shape=(2, 4, 4), nodes=nodes, readout=Readout("out", "spike_count", 2.0),
                          encoding=Encoding("poisson", 1.0))


def zoo_transformer(seed: int = 0, n_tok: int = 4, vocab: int = 11, d: int = 8, heads: int = 2) -> SpikingNetwork:
    """Every Transformer operator (issue 13) on token-id input [n_tok]: Embedding + Constant position
    embedding -> LayerNorm -> TokenLinear QKV -> Slice -> Reshape/Transpose into heads -> signed Q, K, V
    as pairs of IF populations (x = relu(x) - relu(-x)) -> MatMul Q K^T -> causal Softmax -> IF on the
    probabilities -> MatMul with V -> head merge -> TokenLinear -> residual Add -> GELU Activation ->
    Concat behind a Constant class token -> Slice of the class token -> Reshape -> Linear readout."""
    from neurosim.ir import (Activation, Concat, Constant, Embedding, LayerNorm, MatMul, Reshape, Slice, Softmax,
                             TokenLinear, Transpose)

    rng = np.random.default_rng(seed)
    hd = d // heads
    nodes = {
        "emb": Embedding("input", weight=rng.normal(0, 1.0, (vocab, d))),
        "pos": Constant((), value=rng.normal(0, 0.3, (n_tok, d))),
        "x0": Add(("emb", "pos")),
        "ln": LayerNorm("x0", weight=rng.uniform(.8, 1.2, d), bias=rng.normal(0, .1, d), eps=1e-5),
        "qkv": TokenLinear("ln", weight=rng.normal(0, 1.0 / np.sqrt(d), (3 * d, d)), bias=rng.normal(0, .1, 3 * d)),
    }
    for j, nm in enumerate("qkv"):
        nodes[f"{nm}_s"] = Slice("qkv", axis=1, start=j * d, stop=(j + 1) * d)
        nodes[f"{nm}_h"] = Reshape(f"{nm}_s", shape=(n_tok, heads, hd))
        nodes[f"{nm}_t"] = Transpose(f"{nm}_h", perm=(1, 0, 2))
        nodes[f"{nm}_pos"] = Neurons(f"{nm}_t", shape=(heads, n_tok, hd), threshold=0.5, v_init=0.25)
        nodes[f"{nm}_negin"] = Add((f"{nm}_t",), weights=[np.float32(-1.0)])
        nodes[f"{nm}_neg"] = Neurons(f"{nm}_negin", shape=(heads, n_tok, hd), threshold=0.5, v_init=0.25)
        nodes[nm] = Add((f"{nm}_pos", f"{nm}_neg"), weights=[np.float32(0.5), np.float32(-0.5)])
    nodes.update({
        "scores": MatMul(("q", "k"), transpose_b=True, scale=1.0 / np.sqrt(hd)),
        "probs": Softmax("scores", causal=True),
        "p_n": Neurons("probs", shape=(heads, n_tok, n_tok), threshold=0.25, v_init=0.125),
        "p_s": Add(("p_n",), weights=[np.float32(0.25)]),
        "att": MatMul(("p_s", "v")),
        "merge_t": Transpose("att", perm=(1, 0, 2)),
        "merge": Reshape("merge_t", shape=(n_tok, d)),
        "proj": TokenLinear("merge", weight=rng.normal(0, 1.0 / np.sqrt(d), (d, d))),
        "res": Add(("x0", "proj")),
        "act": Activation("res", fn="gelu"),
        "cls": Constant((), value=rng.normal(0, .5, (1, d))),
        "cat": Concat(("cls", "act"), axis=0),
        "tok0": Slice("cat", axis=0, start=1, stop=2),
        "vec": Reshape("tok0", shape=(d,)),
        "out": Linear("vec", weight=rng.normal(0, 1.0, (5, d)), bias=rng.normal(0, .1, 5)),
    })
    return SpikingNetwork(input_shape=(n_tok,), nodes=nodes, readout=Readout("out", "membrane"))


def token_inputs(net: SpikingNetwork, batch: int, seed: int = 1) -> np.ndarray:
    """Random token ids for a network whose input is read by an Embedding."""
    emb = next(n for n in net.nodes.values() if type(n).__name__ == "Embedding")
    rng = np.random.default_rng(seed)
    return rng.integers(0, emb.weight.shape[0], (batch, *net.input_shape)).astype(np.float32)
