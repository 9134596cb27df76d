"""neurosim: what a neural network costs on real hardware, and what happens when it spikes."""
__version__ = "0.1.0"

# ANN-to-SNN conversion (issue 5). Lazy, so `import neurosim` (and the CLI) does not import torch:
# `neurosim.convert` is the conversion package, which is itself callable: neurosim.convert(model, calib).
_LAZY = {"convert": ("neurosim.convert", None), "SpikingNetwork": ("neurosim.ir", "SpikingNetwork"),
         "SimResult": ("neurosim.ir", "SimResult")}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        m = importlib.import_module(mod)
        return m if attr is None else getattr(m, attr)
    raise AttributeError(f"module 'neurosim' has no attribute {name!r}")
