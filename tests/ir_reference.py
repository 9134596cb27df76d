"""Kept for old imports: the IR reference now is the library backend ``"reference"``
(:mod:`neurosim.backends.reference`); import ``reference_run`` from there."""
from neurosim.backends.reference import reference_run, simulate  # noqa: F401
