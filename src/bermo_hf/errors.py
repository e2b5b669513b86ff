"""The one error family of `bermo_hf`: library modules raise it, the `bermo` commands print its message as one line.

`BermoError` is a `ValueError`, so code that already catches bad values keeps working."""


class BermoError(ValueError):
    """Something asked of `bermo_hf` cannot be done as asked; the message says what was wrong and what is allowed."""
