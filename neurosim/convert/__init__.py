"""ANN -> spiking network conversion: ``neurosim.convert(module, calibration_data, **options)``.

:mod:`neurosim.convert.graph` turns a torch.fx trace into convertible ops (BatchNorm folded, dropout
dropped, max-pool moved after its activation); :mod:`neurosim.convert.core` normalises the
activations on calibration data (or reads QCFS thresholds) and assembles the
:class:`~neurosim.ir.SpikingNetwork`. The method and its papers are in :mod:`neurosim.convert.core`.
:mod:`neurosim.convert.pipeline` (``run_convert``) trains or loads a zoo model, converts, simulates and
reports accuracy per T (what ``neurosim convert`` runs).
"""
import sys

from neurosim.convert.core import ConversionOptions, convert, parse_norm
from neurosim.convert.graph import SUPPORTED, AnnGraph, extract
from neurosim.convert.pipeline import ConvertReport, checkpoint_path, run_convert, train_or_load

__all__ = ["convert", "ConversionOptions", "parse_norm", "extract", "AnnGraph", "SUPPORTED", "run_convert",
           "ConvertReport", "train_or_load", "checkpoint_path"]


class _CallableModule(sys.modules[__name__].__class__):
    """``neurosim.convert`` is both this package and the function: ``neurosim.convert(model, calib)``."""

    def __call__(self, *args, **kwargs):
        return convert(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
