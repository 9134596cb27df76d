"""What a backend returns: :class:`SimResult`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurosim.errors import NeurosimError


# ---- simulation results -----------------------------------------------------------------------------

@dataclass
class SimResult:
    """What a backend returns from :meth:`SpikingNetwork.run`.

    ``output`` [batch, classes]: the readout (module docstring, step 3). ``predictions`` [batch].
    Per population (keyed by node name, in network order): ``spike_counts`` (total spike events over
    the batch and all steps; a signed population's -1 spikes count as events too), ``neurons``
    (neurons per sample), ``firing_rates`` (events per neuron per step, averaged over the batch). Per weight layer (Linear/Conv2d, and Add nodes with a spiking
    input, keyed by name): ``synops``, synaptic operations per sample over all steps: every nonzero
    input element at every step times the nonzero weights it drives (an Add: one per input spike);
    for a direct-encoded input these are analog MACs, counted every step.
    ``trace`` (optional) [T, batch, classes]: the readout after each step ``t`` (``scale * A_t / t``),
    equal to what a ``t``-step run would return, so one run gives accuracy at every ``t <= T``.
    ``extras``: what a backend reports beyond these (Lava: ``lava_processes``, ``lava_lanes``,
    ``lava_steps``, ``lava_runs``, ``lava_input_steps``, fixed point ``quantization``), each also an
    attribute (``result.quantization``); :meth:`to_dict` keeps them (tables as row lists) and
    :meth:`to_dataframe` carries them in ``df.attrs["extras"]``.
    """

    output: np.ndarray
    predictions: np.ndarray
    timesteps: int
    spike_counts: dict[str, float]
    neurons: dict[str, int]
    firing_rates: dict[str, float]
    synops: dict[str, float]
    backend: str = ""
    precision: str = "float"
    batch: int = 0
    wall_s: float = 0.0
    trace: np.ndarray | None = None
    counts: dict[str, np.ndarray] | None = None  # optional: net spike count C_T per neuron [batch, *shape]
    # optional (record_step_counts=True): spike events per step, per population, per spiking max-pool and
    # for "input" (nonzero encoded input elements), as [T, batch] float64 arrays (row t = step t, column = sample)
    step_counts: dict[str, np.ndarray] | None = None
    # synaptic node -> the population its current drives (None: the readout); SpikingNetwork.run fills it
    synapse_targets: dict[str, str | None] | None = None
    # backend-specific results (Lava: lava_processes, lava_lanes, lava_steps, lava_runs, lava_input_steps,
    # quantization); each is also readable as an attribute (``result.quantization``)
    extras: dict = field(default_factory=dict)

    def __getattr__(self, name):
        # only called when normal lookup fails: the backend extras by name
        if name.startswith("__") or name == "extras":
            raise AttributeError(name)
        extras = self.__dict__.get("extras") or {}
        if name in extras:
            return extras[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __post_init__(self):
        self.output = np.asarray(self.output)
        self.predictions = np.asarray(self.predictions)
        if not self.batch:
            self.batch = int(self.output.shape[0])

    @property
    def total_spikes(self) -> float:
        return float(sum(self.spike_counts.values()))

    @property
    def total_synops(self) -> float:
        """Synaptic operations per sample, all layers, all steps."""
        return float(sum(self.synops.values()))

    def accuracy(self, labels) -> float:
        labels = np.asarray(labels).reshape(-1)
        return float((self.predictions == labels).mean())

    def accuracy_trace(self, labels) -> np.ndarray:
        """Accuracy after each step ``t = 1..T`` (needs ``trace``)."""
        if self.trace is None:
            raise NeurosimError("this result has no trace; run with record_trace=True")
        labels = np.asarray(labels).reshape(-1)
        return (self.trace.argmax(-1) == labels[None]).mean(axis=1)

    def to_dataframe(self):
        """One row per layer: neurons, spikes per sample, firing rate, synops per sample."""
        import pandas as pd

        rows = []
        for k in self.neurons:
            rows.append({"layer": k, "kind": "neurons", "neurons": self.neurons[k],
                         "spikes_per_sample": self.spike_counts[k] / max(self.batch, 1),
                         "firing_rate": self.firing_rates[k], "synops_per_sample": float("nan")})
        for k, v in self.synops.items():
            rows.append({"layer": k, "kind": "synapses", "neurons": 0, "spikes_per_sample": float("nan"),
                         "firing_rate": float("nan"), "synops_per_sample": v})
        df = pd.DataFrame(rows)
        df.attrs["extras"] = _plain(self.extras)  # backend extras travel with the table
        return df

    def to_dict(self) -> dict:
        return {
            "backend": self.backend, "precision": self.precision, "timesteps": self.timesteps,
            "batch": self.batch, "wall_s": self.wall_s,
            "output": self.output.tolist(), "predictions": self.predictions.tolist(),
            "spike_counts": dict(self.spike_counts), "neurons": dict(self.neurons),
            "firing_rates": dict(self.firing_rates), "synops": dict(self.synops),
            "total_spikes": self.total_spikes, "total_synops": self.total_synops,
            "synapse_targets": dict(self.synapse_targets or {}),
            "extras": _plain(self.extras),
        }


def _plain(value):
    """``value`` as JSON-ready Python (DataFrames as lists of row dicts, arrays as lists)."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return [_plain(r) for r in value.to_dict(orient="records")]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
