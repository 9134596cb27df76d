"""Loihi-specific pieces: Lava processes of our own (``processes``), the fixed-point quantiser
(``quantize``) and the resource mapper behind ``neurosim loihi-map`` (``resources``).

Kept in a package of their own because Lava's compiler looks for ProcessModels by importing every
module next to a Process's module (``lava/magma/compiler/compiler_graphs.py``); nothing here may be
expensive or have side effects at import time.
"""
