"""The backend driver: what every backend shares, so that a backend is two functions.

A backend in the seam form supplies

* ``prepare(net, precision, **options) -> program``: lower the network for a precision (torch modules,
  Lava processes' parameters, a Brian2 lowering); its keyword parameters are backend options;
* ``simulate(program, batch: Batch, **options) -> Activity``: run one chunk of encoded inputs and say
  what happened (readout, per-population spike events, optionally counts, trace and its own SynOps).
  Its keyword parameters are options too: ``record_trace``/``record_counts``/``record_step_counts``
  where the backend can record them (a backend without one refuses it with one clear error,
  :meth:`neurosim.backends.Backend.check_options`), and run-time options such as Lava's ``chunk_steps``.

and :func:`drive` does the rest, the same way for every backend:

1. the inputs are checked (:func:`neurosim.backends.batch_inputs`: shape, NaN/inf, empty batch) and the
   options (precision, positive integers, names), before anything is built;
2. the whole batch is encoded once (:func:`neurosim.encoding.encode`, a CPU generator seeded with
   ``seed``), so a Poisson run sees the same spikes on every backend and its result does not depend on
   ``batch_size`` (Poisson spikes are held as int8 between chunks);
3. the batch is cut into chunks of ``batch_size`` samples; by default as many as fit the program's
   memory budget, ``program.memory_mib`` (default :data:`MEMORY_MIB`) over ``program.sample_elements(T)``
   elements per sample of ``program.dtype`` (so float64 halves the chunk); a program with
   ``plan(B, T, batch_size)`` chooses its own chunk (Brian2 runs several side-by-side chunks in one
   ``Network.run``; Lava groups samples by their fixed-point input step and batches them itself);
4. it times the run, concatenates the chunks and assembles :class:`~neurosim.ir.SimResult`: spike
   counts, firing rates, predictions, the trace and counts when asked, backend extras (Lava's process
   counts, the fixed-point ``quantization`` table) in ``SimResult.extras``;
5. SynOps from source events (:func:`neurosim.ir.lowering.synops`: every nonzero event of a spike source
   or of the input times the nonzero weights it drives), unless the backend measured them itself
   (``Activity.synops``: snntorch and the reference count analog maps step by step, exactly).
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

__all__ = ["Batch", "Activity", "drive", "MEMORY_MIB", "option_names"]

#: default memory budget of one chunk (see :func:`drive`, step 3)
MEMORY_MIB = 512.0

_DRIVER_OPTIONS = ("seed", "batch_size")


@dataclass
class Batch:
    """One chunk of encoded inputs, what ``simulate`` receives.

    ``x`` [b, *input_shape]: the inputs (float32, or float64 when given so); ``encoded`` [T, b, *input_shape]
    in ``x``'s dtype: the input node's output at every step, or [1, b, ...] with ``const`` (direct
    encoding: the same current at every step); ``start``: the index of the chunk's first sample in the
    whole batch."""

    x: torch.Tensor
    encoded: torch.Tensor
    const: bool
    timesteps: int
    start: int = 0

    @property
    def size(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Activity:
    """What ``simulate`` returns for a chunk of ``b`` samples.

    ``output`` [b, classes] and ``trace`` [T, b, classes] (when recorded): the readout, scaled
    (``scale * A_t / t``). ``events``: spike events per element, summed over the chunk, for every
    population and spiking max-pool (IR flat order); the driver adds the input's (nonzero encoded
    elements times steps) unless the backend gives ``"input"`` itself (Lava's quantised fixed-point
    input). ``spike_counts``: total events per population (default: the sums of ``events``).
    ``counts`` [b, *shape] net counts per population; ``step_counts`` [T, b] per source. ``synops``:
    the backend's own SynOps, totals over the chunk (not per sample), replacing the driver's count.
    ``extras``: backend-specific results for ``SimResult.extras``."""

    output: np.ndarray
    trace: np.ndarray | None = None
    events: dict[str, np.ndarray] = field(default_factory=dict)
    spike_counts: dict[str, float] | None = None
    counts: dict[str, np.ndarray] | None = None
    step_counts: dict[str, np.ndarray] | None = None
    synops: dict[str, float] | None = None
    extras: dict = field(default_factory=dict)


def option_names(fn: Callable, skip: int) -> tuple[str, ...] | None:
    """The keyword options ``fn`` takes after its first ``skip`` positional parameters (None: any)."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params if p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                      inspect.Parameter.POSITIONAL_OR_KEYWORD))


def _split(options: dict, prepare: Callable, simulate: Callable) -> tuple[dict, dict]:
    p_names, s_names = option_names(prepare, 2), option_names(simulate, 2)
    p = {k: v for k, v in options.items() if p_names is None or k in p_names}
    s = {k: v for k, v in options.items() if s_names is None or k in s_names}
    return p, s


def _itemsize(dtype) -> int:
    if isinstance(dtype, torch.dtype):
        return torch.empty((), dtype=dtype).element_size()
    return np.dtype(dtype or np.float32).itemsize


def _chunk(program, B: int, T: int, batch_size: int | None) -> int:
    plan = getattr(program, "plan", None)
    if plan is not None:
        return max(1, min(B, int(plan(B, T, batch_size))))
    if batch_size is not None:
        return max(1, min(B, int(batch_size)))
    elems = getattr(program, "sample_elements", None)
    if elems is None:
        return B
    per_sample = max(int(elems(T)), 1) * _itemsize(getattr(program, "dtype", None))
    budget = float(getattr(program, "memory_mib", MEMORY_MIB)) * 2 ** 20
    return int(max(1, min(B, budget // per_sample)))


def _cat(parts: list, axis: int):
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis)


def drive(name: str, prepare: Callable, simulate: Callable, net, x: np.ndarray, timesteps: int,
          precision: str, options: dict):
    """Run ``net`` on checked inputs ``x`` [B, *input_shape] with checked ``options`` (module docstring)."""
    from neurosim.encoding import encode
    from neurosim.ir import SimResult
    from neurosim.ir.lowering import INPUT, synops

    options = dict(options)
    seed = options.pop("seed", 0)
    batch_size = options.pop("batch_size", None)
    p_opts, s_opts = _split(options, prepare, simulate)
    B, T = int(x.shape[0]), int(timesteps)
    t0 = time.perf_counter()
    program = prepare(net, precision, **p_opts)
    xt = torch.as_tensor(x)
    enc, const = encode(net.encoding, xt, T, generator=torch.Generator().manual_seed(int(seed)))
    if not const:
        enc = enc.to(torch.int8)  # Poisson spikes are -1/0/1: a quarter of the memory between chunks
    bs = _chunk(program, B, T, batch_size)
    acts = []
    for s in range(0, B, bs):
        e = enc[:, s:s + bs]
        acts.append(simulate(program, Batch(xt[s:s + bs], e if const else e.to(xt.dtype), const, T, s), **s_opts))
    output = _cat([np.asarray(a.output) for a in acts], 0)  # the backend's dtype (float64 for exactness tests)
    neurons = {k: p.size for k, p in net.populations.items()}
    events: dict[str, np.ndarray] = {}
    for a in acts:
        for k, v in a.events.items():
            events[k] = events[k] + np.asarray(v, np.float64) if k in events else np.asarray(v, np.float64)
    spikes = {k: 0.0 for k in neurons}
    for a in acts:
        for k in neurons:
            spikes[k] += float(a.spike_counts[k]) if a.spike_counts is not None else float(np.sum(a.events[k]))
    if all(a.synops is not None for a in acts):
        syn = {k: sum(a.synops[k] for a in acts) / B for k in acts[0].synops}
    else:
        if INPUT not in events:
            nz = torch.count_nonzero(enc.reshape(enc.shape[0], B, -1), dim=(0, 1)).to(torch.float64)
            events[INPUT] = (nz * (T if const else 1)).numpy()
        syn = synops(net, events, B, T)
    trace = _cat([np.asarray(a.trace) for a in acts], 1) if acts[0].trace is not None else None
    counts = ({k: _cat([np.asarray(a.counts[k]) for a in acts], 0).astype(np.int32) for k in neurons}
              if acts[0].counts is not None else None)
    steps = ({k: _cat([np.asarray(a.step_counts[k]) for a in acts], 1) for k in acts[0].step_counts}
             if acts[0].step_counts is not None else None)
    extras = acts[-1].extras if len(acts) == 1 or not hasattr(program, "merge_extras") else \
        program.merge_extras([a.extras for a in acts])
    wall = time.perf_counter() - t0
    return SimResult(output=output, predictions=output.argmax(1), timesteps=T, spike_counts=spikes,
                     neurons=neurons, firing_rates={k: spikes[k] / (neurons[k] * T * B) for k in neurons},
                     synops=syn, backend=name, precision=precision, batch=B, wall_s=wall, trace=trace,
                     counts=counts, step_counts=steps, extras=dict(extras))
