"""A plain numpy/torch reference of the IR's per-step semantics (``neurosim/ir.py`` docstring), written
for the backend agreement tests independently of every backend's lowering: it walks the nodes in
list order at every step, exactly as the docstring states. float64 by default."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from neurosim.ir import (INPUT, Add, AvgPool2d, Conv2d, Flatten, Linear, Neurons, SpikeMaxPool2d, SpikingNetwork,
                         SumPool2d)


def reference_run(net: SpikingNetwork, x: np.ndarray, T: int, encoded: np.ndarray | None = None,
                  dtype=torch.float64, events: bool = False, record: tuple[str, ...] = ()):
    """Returns ``(output [B, classes], net spike counts per population [B, *shape])``, and with
    ``events`` also the spike events per population (a signed neuron's -1 spikes count as events),
    and with ``record`` also the per-step outputs ``[T, B, *shape]`` of those nodes (last item).

    ``encoded`` [T, B, *input_shape]: the input node's output per step (Poisson spikes); default:
    the direct encoding ``e_t = x``.
    """
    x = torch.as_tensor(np.asarray(x), dtype=dtype)
    B = x.shape[0]
    v = {k: torch.as_tensor(np.broadcast_to(n.v_init, n.shape).copy(), dtype=dtype).expand(B, *n.shape).clone()
         for k, n in net.nodes.items() if isinstance(n, Neurons)}
    cnt = {k: torch.zeros(B, *net.shapes[n.inputs[0]], dtype=dtype)
           for k, n in net.nodes.items() if isinstance(n, SpikeMaxPool2d)}
    spikes = {k: torch.zeros(B, *n.shape, dtype=dtype) for k, n in net.nodes.items() if isinstance(n, Neurons)}
    n_events = {k: torch.zeros_like(s) for k, s in spikes.items()}
    acc = torch.zeros(B, net.num_classes, dtype=dtype)
    steps = {k: [] for k in record}
    t_ = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
    for t in range(T):
        val = {INPUT: x if encoded is None else torch.as_tensor(encoded[t], dtype=dtype)}
        for k, n in net.nodes.items():
            xs = [val[i] for i in n.inputs]
            if isinstance(n, Linear):
                y = xs[0] @ t_(n.weight).T
                val[k] = y + t_(n.bias) if n.bias is not None else y
            elif isinstance(n, Conv2d):
                val[k] = F.conv2d(xs[0], t_(n.weight), None if n.bias is None else t_(n.bias), n.stride, n.padding,
                                  n.dilation, n.groups)
            elif isinstance(n, AvgPool2d):
                val[k] = F.avg_pool2d(xs[0], n.kernel_size, n.stride, n.padding, count_include_pad=True)
            elif isinstance(n, SumPool2d):
                val[k] = F.avg_pool2d(xs[0], n.kernel_size, n.stride, n.padding, count_include_pad=True,
                                      divisor_override=1)
            elif isinstance(n, Flatten):
                val[k] = xs[0].reshape(B, -1)
            elif isinstance(n, Add):
                val[k] = sum(xi * t_(w) for xi, w in zip(xs, n.weights))
            elif isinstance(n, Neurons):
                vv = n.leak * v[k] + xs[0] + t_(n.bias)
                s = (vv > t_(n.threshold)).to(dtype)
                if n.signed:
                    s = s - ((s == 0) & (vv < 0) & (spikes[k] > 0)).to(dtype)
                if n.reset == "subtract":
                    vv = vv - t_(n.threshold) * s
                else:
                    vv = torch.where(s.bool(), torch.full_like(vv, n.v_reset), vv)
                v[k] = vv
                spikes[k] += s
                n_events[k] += s.abs()
                val[k] = s
            elif isinstance(n, SpikeMaxPool2d):
                before = F.max_pool2d(cnt[k], n.kernel_size, n.stride, n.padding)
                cnt[k] = cnt[k] + xs[0]
                val[k] = F.max_pool2d(cnt[k], n.kernel_size, n.stride, n.padding) - before
            else:  # pragma: no cover
                raise AssertionError(n.kind)
        acc += val[net.readout.node]
        for k in record:
            steps[k].append(val[k].numpy())
    out = (net.readout.scale * acc / T).numpy()
    res = (out, {k: s.numpy() for k, s in spikes.items()})
    if events:
        res += ({k: e.numpy() for k, e in n_events.items()},)
    return res + ({k: np.stack(v) for k, v in steps.items()},) if record else res
