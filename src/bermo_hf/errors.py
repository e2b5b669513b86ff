"""The one error family of `bermo_hf`: library modules raise it, the `bermo` commands print its message as one line.

Every class is a `ValueError`, so code that already catches bad values keeps working; a message says what was wrong
and what is allowed."""


class BermoError(ValueError):
    """Something asked of `bermo_hf` cannot be done as asked."""


class BermoUsageError(BermoError):
    """What the user gave cannot be used as given: a missing file or column, labels absent from the data, a folder
    that is not empty, a checkpoint of the wrong kind."""


class PruningArgumentError(BermoUsageError):
    """A pruning setting out of range, or a schedule that does not fit the training run."""


class ProbingError(BermoUsageError):
    """A SentEval file that cannot be read as the format says, or a probing setting that cannot be used."""
