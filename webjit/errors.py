"""User-facing errors.

Anything wrong with the user's model, inputs or options raises a `WebjitError`. The CLI prints its message as
one line and exits with status 2, without a traceback. Every other exception is a bug in webjit.
"""


class WebjitError(Exception):
    """An error in what the user gave us (model, shapes, inputs, options)."""


class UnsupportedOp(WebjitError):
    """A node whose op type (or domain, or attribute combination) webjit cannot compile."""


class ValidationFailed(WebjitError):
    """Compiled outputs differ from the reference by more than the tolerance."""


class PaddingChanges(WebjitError):
    """A model whose outputs at real positions change when its inputs are padded: it cannot be length-bucketed."""
