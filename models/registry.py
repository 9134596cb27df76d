"""The model zoo's registry: ``create(name, **overrides)``, ``names()``, ``example_inputs(name, ...)``.

Builders register themselves with :func:`register` (timm's ``@register_model`` idiom). Each entry also
knows how to make example inputs for its model, so the profiler and the CLI can run any entry without
knowing its family. Inputs are created on the current default device, so inside
``with torch.device("meta"):`` they allocate nothing.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from neurosim.errors import NeurosimError, UnknownNameError

InputFn = Callable[[int, "int | None", dict], tuple]


@dataclass(frozen=True)
class Entry:
    """One registered model.

    ``inputs(batch, seq, cfg)`` returns the example inputs for a model built with config ``cfg``
    (the builder's defaults merged with the user's overrides); ``seq`` is ``None`` unless given.
    ``reference`` names the published model whose parameter count and MACs we match, if any.
    """

    name: str
    family: str
    build: Callable[..., nn.Module]
    inputs: InputFn
    reference: str | None = None
    description: str = ""
    defaults: dict = field(default_factory=dict)


_REGISTRY: dict[str, Entry] = {}


def register(name: str, *, family: str, inputs: InputFn, reference: str | None = None,
             description: str | None = None, **defaults):
    """Decorator: register ``builder(**cfg) -> nn.Module`` under ``name``; a duplicate name raises.

    ``defaults`` override the builder's keyword defaults for this entry (one builder, many configs).
    ``description`` (one line) defaults to the first line of the builder's docstring.
    """

    def deco(builder: Callable[..., nn.Module]):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered (by {_REGISTRY[name].build.__module__})")
        doc = description or (inspect.getdoc(builder) or "").split("\n")[0]
        _REGISTRY[name] = Entry(name, family, builder, inputs, reference, doc, dict(defaults))
        return builder

    return deco


def _load_builders() -> None:
    # Importing the family modules runs their @register decorators.
    from models import cnn, gcn, moe, mlp, recurrent, transformer, unet, vit  # noqa: F401


def entry(name: str) -> Entry:
    _load_builders()
    if name not in _REGISTRY:
        raise UnknownNameError("model", name, _REGISTRY)
    return _REGISTRY[name]


def names(family: str | None = None) -> list[str]:
    """Registered model names (sorted), optionally only those of one family."""
    _load_builders()
    return sorted(n for n, e in _REGISTRY.items() if family is None or e.family == family)


def config(name: str, **overrides) -> dict:
    """The full config of ``name`` with ``overrides``: builder defaults < entry defaults < overrides."""
    e = entry(name)
    sig = inspect.signature(e.build)
    allowed = {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
    bad = sorted(set(overrides) - set(allowed))
    if bad:
        raise NeurosimError(f"model {name!r} has no option {', '.join(bad)}; options: {', '.join(sorted(allowed))}")
    return {**allowed, **e.defaults, **overrides}


def create(name: str, **overrides) -> nn.Module:
    """Build model ``name``; ``overrides`` replace its config values (see :func:`config`).

    Build inside ``with torch.device("meta"):`` to get a weightless model of any size.
    """
    e = entry(name)
    cfg = config(name, **overrides)
    if not overrides:
        model = e.build(**cfg)
    else:  # a user's option that the builder cannot take is bad input, named, not a torch traceback
        try:
            model = e.build(**cfg)
        except (TypeError, ValueError, RuntimeError, ZeroDivisionError, OverflowError, IndexError) as err:
            given = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise NeurosimError(f"model {name!r} cannot be built with {given}: {msg}") from None
    model.neurosim_config = {"name": name, "overrides": dict(overrides)}
    return model


def takes_seq(name: str) -> bool:
    """Whether model ``name``'s inputs have a sequence length (token and sequence models); the others
    ignore ``seq``."""
    return bool(getattr(entry(name).inputs, "takes_seq", False))


def check_seq(name: str, seq: int | None) -> None:
    """A ``--seq`` given for a model that has no sequence length is refused (it would be ignored)."""
    if seq is not None and not takes_seq(name):
        raise NeurosimError(f"model {name!r} takes no sequence length (--seq {seq}): only token and sequence "
                            f"models do ({', '.join(n for n in names() if takes_seq(n))})")


def param_count(name: str, **overrides) -> int:
    """Parameters of ``create(name, **overrides)``, built on the meta device (tied weights once)."""
    with torch.device("meta"):
        model = create(name, **overrides)
    return sum(p.numel() for p in model.parameters())


def example_inputs(name: str, batch: int = 1, seq: int | None = None, **overrides) -> tuple:
    """Example inputs for ``create(name, **overrides)``: a tuple of tensors on the default device."""
    if batch < 1 or (seq is not None and seq < 1):
        raise NeurosimError(f"batch and seq must be positive integers, got batch={batch}, seq={seq}")
    return entry(name).inputs(batch, seq, config(name, **overrides))


# ---- checkpoints: state_dict + config JSON ----------------------------------------------------------

def save(model: nn.Module, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``path`` (a state_dict) and ``path.json`` (the registry config and ``extra`` metadata)."""
    cfg = getattr(model, "neurosim_config", None)
    if cfg is None:
        raise NeurosimError("only models made by models.create() can be checkpointed with their config")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
        Path(str(path) + ".json").write_text(json.dumps({**cfg, **({"extra": extra} if extra else {})}, indent=2))
    except OSError as e:
        raise NeurosimError(f"cannot write checkpoint {path}: {e.strerror or e}") from None
    return path


def load(path: str | Path, map_location: str | torch.device = "cpu", expect: str | None = None) -> nn.Module:
    """Restore a model written by :func:`save` (or by the trainer): rebuild from config, load weights.

    ``expect``: the model name the caller asked for; a checkpoint of another model is refused."""
    path = Path(path)
    meta_path = Path(str(path) + ".json")
    if not path.is_file() or not meta_path.is_file():
        raise NeurosimError(f"checkpoint {path} needs both {path.name} and {meta_path.name}")
    try:
        meta = json.loads(meta_path.read_text())
        name, overrides = meta["name"], meta.get("overrides", {})
        if not isinstance(name, str) or not isinstance(overrides, dict):
            raise TypeError("'name' must be a string and 'overrides' an object")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise NeurosimError(f"checkpoint config {meta_path} is not a neurosim checkpoint config "
                            f"({type(e).__name__}: {_first_line(e)})") from None
    if expect is not None and name != expect:
        raise NeurosimError(f"checkpoint {path} holds a {name!r} model, not {expect!r}")
    model = create(name, **overrides)
    try:  # weights_only: a checkpoint cannot run code
        state = torch.load(path, map_location=map_location, weights_only=True)
        model.load_state_dict(state)
    except Exception as e:  # truncated, garbage, foreign or mismatched weights
        raise NeurosimError(f"checkpoint {path} cannot be loaded into {name!r} with its config "
                            f"({type(e).__name__}: {_first_line(e)})") from None
    model.neurosim_checkpoint = meta
    return model


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


# ---- input factories shared by the families -----------------------------------------------------------

def image_inputs(channels: int = 3, size: int = 224) -> InputFn:
    """Images [batch, C, H, W]; ``cfg`` may override ``in_channels`` and ``image_size``."""

    def make(batch, seq, cfg):
        c, s = cfg.get("in_channels", channels), cfg.get("image_size", size)
        return (torch.randn(batch, c, s, s),)

    return make


def token_inputs(default_seq: int) -> InputFn:
    """Token ids [batch, seq] below ``cfg['vocab_size']``; ``seq`` defaults to ``default_seq``."""

    def make(batch, seq, cfg):
        s = seq or min(default_seq, cfg.get("max_seq_len", default_seq))
        if "max_seq_len" in cfg and s > cfg["max_seq_len"]:
            raise NeurosimError(f"seq={s} exceeds this model's max_seq_len={cfg['max_seq_len']}")
        return (torch.randint(0, cfg["vocab_size"], (batch, s)),)

    make.takes_seq = True
    return make


def vector_inputs(key: str = "in_features") -> InputFn:
    """Flat feature vectors [batch, cfg[key]]."""

    def make(batch, seq, cfg):
        return (torch.randn(batch, cfg[key]),)

    return make


def sequence_inputs(default_seq: int) -> InputFn:
    """Real-valued sequences [batch, seq, cfg['input_size']]."""

    def make(batch, seq, cfg):
        return (torch.randn(batch, seq or default_seq, cfg["input_size"]),)

    make.takes_seq = True
    return make
