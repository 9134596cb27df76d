"""Test-session settings shared by every test module."""
from hypothesis import settings

# Property tests draw the same examples on every machine and every run: CI on a clean clone (no
# .hypothesis database) must not meet a case no developer run has met. `--hypothesis-profile=explore`
# draws fresh random examples when hunting for new counterexamples.
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("default")
