"""Conventions every `bermo` command follows: bad input is one line on stderr, an interruption keeps the
checkpoints and says how to resume, and `--overwrite_output_dir` exists on every release of transformers.

The output-folder rules themselves (never wiped, refused when not empty) are the library's: `bermo_hf.output_folders`.
"""

import dataclasses
import functools
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..checkpoints import TRAINER_STATE_NAME, checkpoint_folders
from ..errors import BermoError


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM while a command runs, so that the command stops as
    after Ctrl-C: checkpoints kept, staging folder removed."""


def reports_usage_errors(command: str) -> Callable:
    """Decorates a command's `main(argv) -> int` so that a `BermoError` (a `BermoUsageError` included) becomes
    `bermo COMMAND: error: message` on stderr and exit status 1, and an interruption (Ctrl-C, SIGTERM) exit status
    130 (143 for SIGTERM)."""

    def decorate(main: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
        @functools.wraps(main)
        def wrapped(argv: list[str]) -> int:
            try:
                return main(argv)
            except BermoError as error:
                print(f"bermo {command}: error: {error}", file=sys.stderr)
                return 1
            except KeyboardInterrupt as interruption:
                return 128 + (signal.SIGTERM if isinstance(interruption, Terminated) else signal.SIGINT)

        return wrapped

    return decorate


@dataclasses.dataclass
class OutputFolderArguments:
    """`--overwrite_output_dir`, for the transformers releases whose `TrainingArguments` no longer has it (5.x)."""

    overwrite_output_dir: bool = dataclasses.field(
        default=False,
        metadata={
            "help": "Write into an existing non-empty --output_dir. Only the files the command writes are replaced; "
            "nothing else in the folder is removed."
        },
    )


def output_folder_argument_classes() -> tuple[type, ...]:
    """`(OutputFolderArguments,)` when `TrainingArguments` lacks `overwrite_output_dir` (transformers 5), else `()`."""
    from transformers import TrainingArguments

    names = {field.name for field in dataclasses.fields(TrainingArguments)}
    return () if "overwrite_output_dir" in names else (OutputFolderArguments,)


@contextmanager
def checkpoints_kept_on_interrupt(command: str, output_dir: str | Path, created: bool) -> Iterator[None]:
    """Runs a training command so that an interruption keeps its work.

    SIGTERM is turned into `Terminated` (a `KeyboardInterrupt`) while the block runs. When the block fails (Ctrl-C,
    SIGTERM, an exception), every complete checkpoint in `output_dir` is kept and one line on stderr names them and
    how to resume; a checkpoint this run left half-written (no `trainer_state.json`) is removed, so that
    `--resume_from_checkpoint last` finds the newest complete one. An `output_dir` that this command `created` and
    that holds no checkpoint is removed again."""
    from accelerate import PartialState

    output_dir = Path(output_dir)
    before = set(checkpoint_folders(output_dir))
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except BaseException as error:
        if PartialState().is_main_process:
            _report_kept_checkpoints(command, output_dir, created, before, error)
        raise
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


def _raise_terminated(signum, frame):
    raise Terminated("SIGTERM")


def _report_kept_checkpoints(command: str, output_dir: Path, created: bool, before: set, error: BaseException):
    for checkpoint in checkpoint_folders(output_dir):
        if checkpoint not in before and not (checkpoint / TRAINER_STATE_NAME).is_file():
            shutil.rmtree(checkpoint, ignore_errors=True)  # half-written by this run: it could not be resumed from
    kept = checkpoint_folders(output_dir)
    names = {Terminated: "terminated (SIGTERM)", KeyboardInterrupt: "interrupted"}
    what = names.get(type(error), "stopped by an error")
    if kept:
        print(
            f"bermo {command}: {what}; {len(kept)} checkpoint(s) kept in {output_dir} (newest: {kept[-1].name}); "
            f"continue with --resume_from_checkpoint last",
            file=sys.stderr,
        )
        return
    if created:
        shutil.rmtree(output_dir, ignore_errors=True)  # this command created it: all of it is its own
    if isinstance(error, KeyboardInterrupt):
        print(f"bermo {command}: {what} before the first checkpoint was saved; nothing to resume from", file=sys.stderr)
