"""neurosim's model zoo: a registry of builders (MLP ... GPT-3), bundled data sets and a CPU trainer.

>>> import models
>>> models.names()[:3]
>>> net = models.create("resnet18", num_classes=10)
"""
from models.registry import create, entry, example_inputs, load, names, param_count, register, save, config  # noqa: F401

__all__ = ["create", "names", "entry", "example_inputs", "load", "save", "register", "config", "param_count"]
