"""Test-session settings shared by every test module."""
from hypothesis import settings

# Property tests draw the same examples on every machine and every run: CI on a clean clone (no
# .hypothesis database) must not meet a case no developer run has met. `--hypothesis-profile=explore`
# draws fresh random examples when hunting for new counterexamples.
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile("default")

# A test run started in the background (`make test &`, nohup, some CI shells) inherits SIGINT ignored;
# the signal tests need the interpreter's default Ctrl-C behaviour, and their children inherit it.
import signal  # noqa: E402

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
