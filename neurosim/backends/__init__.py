"""Spiking backends: each lowers a :class:`neurosim.ir.SpikingNetwork` and runs it.

A backend is two functions behind one driver (:mod:`neurosim.backends.base`): ``prepare(net, precision,
**options) -> program`` and ``simulate(program, batch, **options) -> Activity``. The driver validates
inputs and options, encodes the whole batch once (seeded), cuts it into chunks under a memory budget,
times the run, assembles :class:`neurosim.ir.SimResult` and counts SynOps from source events; so a
backend never re-implements any of that. Register one with :func:`register_backend`::

    register_backend("mysim", precisions=("float",), prepare=prepare, simulate=simulate)

A plain ``run(net, inputs, timesteps, precision, **options) -> SimResult`` still registers as a
decorator (third-party backends that do everything themselves; inputs are checked first):

>>> from neurosim.backends import register_backend
>>> @register_backend("mysim", precisions=("float",))
... def run(net, inputs, timesteps, precision, **options): ...

Backends live one per module here (``reference.py``, ``snntorch.py``, ``lava.py``, ``brian2.py``) and
are imported on first use, so ``import neurosim`` never pays for Lava or Brian2.

Every backend must reproduce the per-step semantics in :mod:`neurosim.ir`'s docstring. Those semantics
are executable as the ``"reference"`` backend (:mod:`neurosim.backends.reference`);
``tests/test_backend_conformance.py`` runs every name in :func:`backend_names` on a library of small
networks against it, so a new backend is complete when that suite passes.

Common options (:data:`COMMON_OPTIONS`): ``seed``, ``record_trace``, ``record_counts``, ``batch_size``
and ``device``. The driver takes ``seed`` and ``batch_size`` for every seam backend; the others are
keyword parameters of ``prepare`` or ``simulate`` (or of a plain ``run``). A backend without one still
accepts it when it asks for nothing (``False``/``None``, ``device="cpu"``); asking it for more, or passing
an option no parameter names, is one :class:`~neurosim.errors.NeurosimError` that lists the backend's
options.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Callable

import numpy as np

from neurosim.backends.base import Activity, Batch, drive, option_names
from neurosim.errors import NeurosimError, UnknownNameError
from neurosim.ir import SimResult  # noqa: F401  (re-exported: backends return it)

__all__ = ["register_backend", "get_backend", "backend_names", "Backend", "SimResult", "COMMON_OPTIONS",
           "Activity", "Batch"]

_NOT_BACKENDS = {"base"}

#: options every backend takes: name -> what it means (a backend without one accepts its "off" value)
COMMON_OPTIONS = {
    "seed": "Poisson encoding seed",
    "record_trace": "the readout after every step (SimResult.trace)",
    "record_counts": "every neuron's net spike count (SimResult.counts)",
    "batch_size": "samples simulated together",
    "device": "where to simulate (cpu unless the backend supports another)",
}
_POSITIONAL = ("net", "inputs", "timesteps", "precision")


def _asks_nothing(name: str, value) -> bool:
    return value is None or value is False or (name == "device" and str(value) == "cpu")


@dataclass(frozen=True)
class Backend:
    """A registered backend: its name, the precisions it supports, and either ``prepare`` + ``simulate``
    (run by the driver, :mod:`neurosim.backends.base`) or a plain ``run`` function.

    For a seam backend ``run`` is the driver bound to it, with a signature that lists every option."""

    name: str
    run: Callable
    precisions: tuple[str, ...] = ("float",)
    description: str = ""
    prepare: Callable | None = None
    simulate: Callable | None = None

    def __call__(self, net, inputs, timesteps: int, precision: str = "float", **options) -> SimResult:
        if precision not in self.precisions:
            raise NeurosimError(f"backend {self.name!r} has no precision {precision!r}; "
                                f"valid: {', '.join(self.precisions)}")
        for opt in ("batch_size", "chunk_steps"):
            v = options.get(opt)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise NeurosimError(f"{opt} must be a positive integer (or None), got {v!r}")
        options = self.check_options(options)
        x = batch_inputs(net, inputs)
        if self.prepare is None:
            return self.run(net, x, timesteps, precision, **options)
        return drive(self.name, self.prepare, self.simulate, net, x, timesteps, precision, options)

    def options(self) -> tuple[str, ...] | None:
        """The keyword options this backend takes (None: any, it has ``**options``)."""
        if self.prepare is None:
            names = option_names(self.run, 0)
            return None if names is None else tuple(k for k in names if k not in _POSITIONAL)
        p, s = option_names(self.prepare, 2), option_names(self.simulate, 2)
        if p is None or s is None:
            return None
        return tuple(dict.fromkeys(("seed", "batch_size") + p + s))

    def check_options(self, options: dict) -> dict:
        """``options`` without the common options this backend lacks and that ask for nothing; a
        NeurosimError for a common option it cannot honour or an option it does not know."""
        valid = self.options()
        if valid is None:
            return dict(options)
        out = {}
        for k, v in options.items():
            if k in valid:
                out[k] = v
            elif k in COMMON_OPTIONS and _asks_nothing(k, v):
                continue
            elif k in COMMON_OPTIONS:
                raise NeurosimError(f"backend {self.name!r} does not support {k}={v!r} ({COMMON_OPTIONS[k]}); "
                                    f"its options: {', '.join(valid)}")
            else:
                raise NeurosimError(f"backend {self.name!r} has no option {k!r}; valid: {', '.join(valid)}")
        return out


def _driven(name: str, prepare: Callable, simulate: Callable) -> Callable:
    """``run(net, inputs, timesteps, precision, **options)`` for a seam backend, whose signature names
    every option (``inspect.signature`` of it is what a plain backend's ``run`` would show)."""

    def run(net, inputs, timesteps: int, precision: str = "float", **options) -> SimResult:
        return get_backend(name)(net, inputs, timesteps, precision, **options)

    params = list(inspect.signature(run).parameters.values())[:4]
    seen = {p.name for p in params}
    for fn in (prepare, simulate):
        for p in list(inspect.signature(fn).parameters.values())[2:]:
            if p.name not in seen and p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                 inspect.Parameter.POSITIONAL_OR_KEYWORD):
                seen.add(p.name)
                params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    for k, default in (("seed", 0), ("batch_size", None)):
        if k not in seen:
            params.append(inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=default))
    run.__signature__ = inspect.Signature(params)
    run.__name__ = run.__qualname__ = f"run_{name}"
    run.__doc__ = (simulate.__doc__ or prepare.__doc__ or "")
    return run


def batch_inputs(net, inputs) -> np.ndarray:
    """``inputs`` as a float array ``[batch, *net.input_shape]`` (one unbatched sample gains a batch axis);
    float64 stays float64 (exactness tests), anything else becomes float32.

    Every backend receives its inputs through this check, so a wrong shape, an empty batch or a NaN/inf
    value is one clear error (never bias-only predictions).
    """
    try:
        x = np.asarray(inputs.detach().cpu().numpy() if hasattr(inputs, "detach") else inputs)
        x = x if x.dtype == np.float64 else x.astype(np.float32)
    except (TypeError, ValueError) as e:
        raise NeurosimError(f"inputs must be a numeric array [batch, {', '.join(map(str, net.input_shape))}]: "
                            f"{e}") from None
    if x.shape[1:] != tuple(net.input_shape):
        if x.shape == tuple(net.input_shape):
            x = x[None]
        else:
            raise NeurosimError(f"inputs must have shape [batch, {', '.join(map(str, net.input_shape))}], "
                                f"got {list(x.shape)}")
    if x.shape[0] == 0:
        raise NeurosimError("inputs hold no samples (an empty batch)")
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(1))
        raise NeurosimError(f"inputs contain NaN or inf (samples {', '.join(map(str, bad[:5]))}"
                            f"{', ...' if len(bad) > 5 else ''}); a spiking network has no answer for them")
    return x


_REGISTRY: dict[str, Backend] = {}


def register_backend(name: str, precisions: tuple[str, ...] = ("float",), description: str = "",
                     prepare: Callable | None = None, simulate: Callable | None = None):
    """Register a backend.

    With ``prepare`` and ``simulate`` (the seam, :mod:`neurosim.backends.base`): registers at once and
    returns the :class:`Backend`. Without them: a decorator for a plain ``run(net, inputs, timesteps,
    precision, **options) -> SimResult``, returned unchanged."""
    if name in _REGISTRY:
        raise ValueError(f"backend {name!r} is already registered (by {_REGISTRY[name].run.__module__})")
    if (prepare is None) != (simulate is None):
        raise ValueError(f"backend {name!r}: give both prepare and simulate, or neither (a plain run)")
    if prepare is not None:
        doc = description or (prepare.__doc__ or "").strip().split("\n")[0]
        run = _driven(name, prepare, simulate)
        run.__module__ = prepare.__module__
        _REGISTRY[name] = Backend(name, run, tuple(precisions), doc, prepare, simulate)
        return _REGISTRY[name]

    def deco(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"backend {name!r} is already registered (by {_REGISTRY[name].run.__module__})")
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = Backend(name, fn, tuple(precisions), doc)
        return fn

    return deco


def _module_names() -> list[str]:
    import neurosim.backends as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name not in _NOT_BACKENDS
                  and not m.name.startswith("_"))


def backend_names() -> list[str]:
    """Names of all backends (registered or importable from this package), sorted."""
    return sorted(set(_REGISTRY) | set(_module_names()))


def get_backend(name: str) -> Backend:
    """The backend ``name``, importing ``neurosim.backends.<name>`` on first use."""
    if name not in _REGISTRY and name in _module_names():
        try:
            importlib.import_module(f"neurosim.backends.{name}")
        except ImportError as e:
            raise NeurosimError(f"backend {name!r} cannot be imported: {e}") from e
    if name not in _REGISTRY:
        raise UnknownNameError("backend", name, backend_names())
    return _REGISTRY[name]
