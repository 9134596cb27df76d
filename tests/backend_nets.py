"""Small hand-built IR networks for the backend tests (random weights scaled so that every layer
fires at useful rates). Independent of the converter so the backends can be tested on their own."""
from __future__ import annotations

import numpy as np

from neurosim.ir import (Add, AvgPool2d, Conv2d, Encoding, Flatten, Linear, Neurons, Readout, SpikeMaxPool2d,
                         SpikingNetwork)


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
