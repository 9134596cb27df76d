"""Errors that mean "the input was wrong", as opposed to a bug.

Library code raises these at its boundaries with a message that names what was wrong and what is
allowed. The CLI turns them into one line on stderr and exit code 2; anything else is a bug and keeps
its traceback.
"""


class NeurosimError(ValueError):
    """Bad input: an unknown name, an impossible shape, a malformed file."""


class UnknownNameError(NeurosimError, KeyError):
    """A registry lookup failed; the message lists the valid names."""

    def __init__(self, kind: str, name: str, valid):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]
