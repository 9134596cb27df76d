"""Study registry: a study is a declared sweep plus one function per cell.

A study module reads top to bottom like a methods section::

    from studies.registry import Sweep, study

    @study("zoo_profile",
           sweep=Sweep(model=zoo_models, batch=[1, 8], dtype=["fp32", "bf16"]),
           quick=Sweep(model=["mlp", "lenet5"], batch=[1], dtype=["fp32"]),
           requires=("hw.workload",))
    def zoo_profile(model: str, batch: int, dtype: str) -> dict:
        ...                                   # one cell: returns one row (a dict) or several (a list)

    @zoo_profile.figure("MACs vs parameters")
    def _(df): ...                            # DataFrame of all rows -> matplotlib Figure

    @zoo_profile.table("Per model")
    def _(df): ...                            # DataFrame -> DataFrame

Decisions (see also the README's studies section):

* A sweep is the cartesian product of named axes, optionally filtered by ``where(cell) -> bool``. An
  axis is a list of JSON scalars or a zero-argument callable returning one (``models.names``), so that
  importing a study module stays cheap and the axis follows the zoo/catalog as they grow.
* A cell's parameters are a dict of JSON scalars; its key in the results store is the canonical JSON
  of that dict (sorted keys, no spaces). Cell functions are pure functions of their parameters: they
  run in other processes or on other machines, so they must not rely on state set up by the caller.
* The code version of a study is ``<neurosim version>+<12 hex of sha256>`` over the study module's
  source, every source and data file of the packages a cell can reach (``neurosim``, ``hw``, ``models``,
  ``studies``: ``*.py``, ``*.toml``, ``*.json``) and the environment (the lock file's bytes when it lies
  beside the packages, else the installed distributions' versions). A changed conversion default,
  backend, cost model or dependency therefore recomputes instead of silently reusing stored cells;
  cells of other code versions stay in the store and ``neurosim study show`` counts them as stale.
* Studies declare the modules they need (``requires``); running a study whose dependency is absent
  raises :class:`~neurosim.errors.NeurosimError` naming the module, before any cell runs.
* User studies live in any module or ``.py`` file: ``neurosim study run --module my_studies.py NAME``
  (or ``NEUROSIM_STUDY_MODULES=a.py:b.mod``); the same reference is passed to worker processes and
  Dask workers so they can import it.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import itertools
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from neurosim.errors import NeurosimError, UnknownNameError

def builtin_modules() -> tuple[str, ...]:
    """The study modules shipped with neurosim: every module of the ``studies`` package, discovered as
    backends and commands are (a new study is a new module with ``@study``; the infrastructure modules
    register nothing). Imported on first use of the registry (cheap: no torch at import)."""
    import pkgutil

    import studies

    return tuple(f"studies.{m.name}" for m in pkgutil.iter_modules(studies.__path__) if not m.name.startswith("_"))


_JSON_SCALARS = (str, int, float, bool, type(None))


CODE_PACKAGES = ("neurosim", "hw", "models", "studies")
CODE_SUFFIXES = (".py", ".toml", ".json")


def tree_digest(root: Path, packages: Sequence[str] = CODE_PACKAGES, suffixes: Sequence[str] = CODE_SUFFIXES) -> str:
    """sha256 over the relative path and bytes of every code/data file under ``root/<package>``."""
    h = hashlib.sha256()
    for pkg in packages:
        for f in sorted((Path(root) / pkg).rglob("*")):
            if f.suffix in suffixes and "__pycache__" not in f.parts and f.is_file():
                h.update(f.relative_to(root).as_posix().encode() + b"\0")
                h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def environment_digest(root: Path) -> str:
    """The lock file's sha256 when the packages run from a checkout, else the installed versions'."""
    lock = Path(root) / "requirements.lock"
    if lock.is_file():
        return hashlib.sha256(lock.read_bytes()).hexdigest()
    from importlib import metadata

    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    return hashlib.sha256("\n".join(dists).encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def code_digest() -> str:
    """What every cell's key depends on besides its study: the suite's code and its environment."""
    root = Path(__file__).resolve().parent.parent
    return hashlib.sha256(f"{tree_digest(root)}:{environment_digest(root)}".encode()).hexdigest()


def canonical_json(params: Mapping[str, Any]) -> str:
    """The store key of a cell: sorted keys, no whitespace, JSON scalars only."""
    for k, v in params.items():
        if not isinstance(v, _JSON_SCALARS):
            raise NeurosimError(f"cell parameter {k}={v!r} is a {type(v).__name__}; "
                                "cell parameters must be str, int, float, bool or None")
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class Sweep:
    """A cartesian product of named axes, filtered by ``where``.

    ``Sweep(model=["mlp", "lenet5"], batch=[1, 8])`` has four cells, in axis order
    (the first axis varies slowest, like nested for-loops written in that order).
    """

    axes: Mapping[str, Sequence | Callable[[], Sequence]]
    where: Callable[[dict], bool] | None = None

    def __init__(self, where: Callable[[dict], bool] | None = None, **axes):
        if not axes:
            raise ValueError("a Sweep needs at least one axis")
        object.__setattr__(self, "axes", dict(axes))
        object.__setattr__(self, "where", where)

    def resolve(self) -> dict[str, list]:
        """Axis name -> list of values (callables are called now)."""
        out = {}
        for name, values in self.axes.items():
            vals = list(values() if callable(values) else values)
            if not vals:
                raise NeurosimError(f"sweep axis {name!r} is empty")
            for v in vals:
                if not isinstance(v, _JSON_SCALARS):
                    raise NeurosimError(f"sweep axis {name!r} has value {v!r}; axis values must be JSON scalars")
            out[name] = vals
        return out

    def cells(self, only: Mapping[str, Sequence] | None = None,
              domain: Mapping[str, Sequence] | None = None) -> list[dict]:
        """Every cell (dict of axis values) that passes ``where``.

        ``only`` replaces some axes' values (``--only model=mlp,lenet5``); each value must belong to
        ``domain`` (the full sweep's axes), otherwise :class:`UnknownNameError` lists the valid ones.
        """
        axes = self.resolve()
        domain = dict(domain) if domain is not None else axes
        for name, values in (only or {}).items():
            if name not in axes:
                raise UnknownNameError("sweep axis", name, axes)
            allowed = domain.get(name, axes[name])
            picked = []
            for v in values:
                match = [a for a in allowed if a == v or str(a) == str(v)]
                if not match:
                    raise UnknownNameError(name, str(v), [str(a) for a in allowed])
                picked.append(match[0])
            axes[name] = picked
        names = list(axes)
        out = []
        for combo in itertools.product(*(axes[n] for n in names)):
            cell = dict(zip(names, combo))
            if self.where is None or self.where(cell):
                out.append(cell)
        return out


@dataclass
class Study:
    """One registered study: its sweep(s), its cell function, and how to present its rows."""

    name: str
    cell: Callable[..., Any]
    sweep: Sweep
    quick: Sweep
    description: str
    requires: tuple[str, ...]
    module: str  # import reference: a dotted module name or an absolute .py path
    source_file: str
    tables: list[tuple[str, Callable]] = field(default_factory=list)
    figures: list[tuple[str, Callable]] = field(default_factory=list)

    # -- presentation, by decorator ---------------------------------------------------------------
    def table(self, title: str):
        """Register ``fn(df) -> DataFrame``: a table for ``study show`` and the report."""

        def deco(fn):
            self.tables.append((title, fn))
            return fn

        return deco

    def figure(self, title: str):
        """Register ``fn(df) -> matplotlib.figure.Figure`` (or None to skip): a figure for the report."""

        def deco(fn):
            self.figures.append((title, fn))
            return fn

        return deco

    # -- what to run ------------------------------------------------------------------------------
    def cells(self, quick: bool = False, only: Mapping[str, Sequence] | None = None) -> list[dict]:
        sweep = self.quick if quick else self.sweep
        if not only:
            return sweep.cells()
        domain = self.sweep.resolve()
        for axis, values in self.quick.resolve().items():  # quick values may lie outside the full sweep
            domain[axis] = domain.get(axis, []) + [v for v in values if v not in domain.get(axis, [])]
        return sweep.cells(only=only, domain=domain)

    def code_version(self) -> str:
        """``<neurosim version>+<sha256(study source, code_digest())[:12]>``: changed code recomputes."""
        import neurosim

        h = hashlib.sha256(Path(self.source_file).read_bytes())
        h.update(code_digest().encode())
        return f"{neurosim.__version__}+{h.hexdigest()[:12]}"

    def check_available(self) -> None:
        """Raise NeurosimError if a module this study needs cannot be imported."""
        for mod in self.requires:
            try:
                importlib.import_module(mod)
            except ImportError as e:
                raise NeurosimError(
                    f"study {self.name!r} needs {mod}, which is not available in this installation ({e})"
                ) from None

    def missing(self) -> str | None:
        """The reason this study cannot run here, or None."""
        try:
            self.check_available()
        except NeurosimError as e:
            return str(e)
        return None

    def __call__(self, **params):
        return self.cell(**params)


_REGISTRY: dict[str, Study] = {}
_LOADED: set[str] = set()


def study(name: str, *, sweep: Sweep, quick: Sweep | None = None, requires: Sequence[str] = (),
          description: str | None = None):
    """Decorator: register ``cell(**params) -> dict | list[dict]`` as study ``name``."""

    def deco(fn: Callable) -> Study:
        mod = sys.modules.get(fn.__module__)
        src = getattr(mod, "__file__", None)
        if src is None:
            raise RuntimeError(f"study {name!r} must be defined in a module file")
        ref = getattr(mod, "__neurosim_ref__", fn.__module__)
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        s = Study(name=name, cell=fn, sweep=sweep, quick=quick or sweep, description=description or doc,
                  requires=tuple(requires), module=ref, source_file=os.path.abspath(src))
        old = _REGISTRY.get(name)
        if old is not None and old.source_file != s.source_file:
            if _same_file(old.source_file, s.source_file):
                return old  # a copy (Client.upload_file on a Dask worker/scheduler): keep the original
            raise ValueError(f"study {name!r} is already registered by {old.source_file}")
        _REGISTRY[name] = s
        return s

    return deco


def _same_file(a: str, b: str) -> bool:
    """Same content (a Dask worker holds an uploaded copy of a user's study file)."""
    try:
        return Path(a).read_bytes() == Path(b).read_bytes()
    except OSError:
        return False


def load_module(ref: str):
    """Import a study module by dotted name or by ``.py`` path (registering its studies)."""
    if ref.endswith(".py") or os.sep in ref:
        path = Path(ref).resolve()
        if not path.is_file():
            # On a remote Dask worker the file was shipped with Client.upload_file under its stem.
            try:
                return importlib.import_module(Path(ref).stem)
            except ImportError:
                raise NeurosimError(f"study module file {ref} does not exist") from None
        modname = "neurosim_user_study_" + hashlib.sha1(str(path).encode()).hexdigest()[:10]
        if modname in sys.modules:
            return sys.modules[modname]
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        mod.__neurosim_ref__ = str(path)
        sys.modules[modname] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            del sys.modules[modname]
            raise
        return mod
    try:
        return importlib.import_module(ref)
    except ModuleNotFoundError as e:
        if e.name and ref.startswith(e.name):
            raise NeurosimError(f"cannot import study module {ref!r}: {e}") from None
        raise


def _load_all(extra: Sequence[str] = ()) -> None:
    env = [m for m in os.environ.get("NEUROSIM_STUDY_MODULES", "").split(os.pathsep) if m]
    for ref in (*builtin_modules(), *env, *extra):
        if ref not in _LOADED:
            load_module(ref)
            _LOADED.add(ref)


def names(modules: Sequence[str] = ()) -> list[str]:
    """Registered study names (built-in, ``NEUROSIM_STUDY_MODULES`` and ``modules``), sorted."""
    _load_all(modules)
    return sorted(_REGISTRY)


def get(name: str, modules: Sequence[str] = ()) -> Study:
    _load_all(modules)
    if name not in _REGISTRY:
        raise UnknownNameError("study", name, _REGISTRY)
    return _REGISTRY[name]
