"""Conventions every `bermo` command follows: bad input is one line on stderr; an output folder is never wiped.

An existing non-empty output folder is refused unless `--overwrite_output_dir` is given, and even then a command only
replaces the files it writes itself: the final files are written into a hidden staging folder inside the output
folder and then renamed into place one by one, so they appear complete or not at all. Checkpoints are written
straight into the output folder by the `Trainer` and survive an interruption (Ctrl-C, SIGTERM, an exception).
"""

import dataclasses
import functools
import os
import re
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import BermoError, BermoUsageError

# Where a command stages its final files inside the output folder before renaming them into place.
STAGING_DIRNAME = ".bermo-partial"
# Files of the output folder that a command merges into (copied into the staging folder first) rather than replaces.
MERGED_FILES = ("README.md",)
OVERWRITE_FLAG = "--overwrite_output_dir"
# The name the Trainer gives its checkpoint folders (transformers.trainer_utils.PREFIX_CHECKPOINT_DIR + "-STEP").
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
# The file the Trainer writes last into a checkpoint: a checkpoint without it was interrupted while being saved.
_TRAINER_STATE_NAME = "trainer_state.json"


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


def checkpoint_folders(folder: str | Path) -> list[Path]:
    """The `Trainer` checkpoint folders (`checkpoint-STEP`) directly inside `folder`, oldest step first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := _CHECKPOINT_NAME.match(path.name)) and path.is_dir()
    ]
    return [path for _, path in sorted(found)]


def check_output_dir(output_dir: str | Path, overwrite: bool, resuming: bool = False) -> None:
    """Raises `BermoUsageError` (one line naming the folder) when `output_dir` is a file, or a non-empty folder while
    neither `overwrite` (`--overwrite_output_dir`) nor `resuming` (continuing from one of its own checkpoints) is set.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise BermoUsageError(f"{output_dir} exists and is not a folder.")
    if overwrite or resuming or not output_dir.is_dir():
        return
    entries = sorted(path.name for path in output_dir.iterdir() if path.name != STAGING_DIRNAME)
    if entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        advice = ""
        if checkpoint_folders(output_dir):
            advice = "; to continue its training, pass --resume_from_checkpoint last"
        raise BermoUsageError(
            f"{output_dir} already exists and is not empty ({shown}); pass {OVERWRITE_FLAG} to write into it (only "
            f"the files this command writes are replaced, nothing else is removed){advice}, or choose another output "
            "folder."
        )


def prepare_output_dir(output_dir: str | Path, overwrite: bool, resuming: bool = False) -> bool:
    """`check_output_dir`, then creates `output_dir` if missing; returns whether it was created.

    The folder itself is never removed or renamed by a command, whatever it is (the working directory, the home
    folder ...): commands write files into it."""
    from accelerate import PartialState

    check_output_dir(output_dir, overwrite, resuming)
    output_dir = Path(output_dir)
    existed = output_dir.is_dir()
    state = PartialState()
    if state.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()
    return not existed


@contextmanager
def final_files_written_atomically(output_dir: str | Path, merged_files=MERGED_FILES) -> Iterator[Path]:
    """Yields an empty staging folder inside `output_dir` to save the final files into; when the block succeeds,
    each staged file replaces the file of the same name in `output_dir` (a rename), and nothing else in `output_dir`
    is touched. When the block fails, the staging folder is removed and `output_dir` is as it was.

    `merged_files` that already exist in `output_dir` (the model card) are copied into the staging folder first, so
    that the writer can merge into them. Multi-process safe: every process gets the same folder, only the main one
    creates, moves and deletes, and all wait for each other around those steps."""
    from accelerate import PartialState

    state = PartialState()
    output_dir = Path(output_dir).absolute()
    staging = output_dir / STAGING_DIRNAME
    if state.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if staging.exists():  # left by an earlier run of a bermo command that was killed
            shutil.rmtree(staging)
        staging.mkdir()
        for name in merged_files:
            if (output_dir / name).is_file():
                shutil.copy2(output_dir / name, staging / name)
    state.wait_for_everyone()
    try:
        yield staging
    except BaseException:
        if state.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    state.wait_for_everyone()
    if state.is_main_process:
        try:
            _check_nothing_in_the_way(staging, output_dir)
            _move_into(staging, output_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    state.wait_for_everyone()


def _check_nothing_in_the_way(source: Path, target: Path) -> None:
    for entry in source.iterdir():
        destination = target / entry.name
        if not destination.exists() and not destination.is_symlink():
            continue
        if entry.is_dir() != destination.is_dir() or destination.is_symlink():
            kind = "folder" if destination.is_dir() else "file"
            raise BermoUsageError(
                f"cannot write {destination}: a {kind} of that name is in the way (nothing was written; move it away)."
            )
        if entry.is_dir():
            _check_nothing_in_the_way(entry, destination)


def _move_into(source: Path, target: Path) -> None:
    for entry in source.iterdir():
        destination = target / entry.name
        if entry.is_dir() and destination.is_dir():
            _move_into(entry, destination)
        else:
            os.replace(entry, destination)


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
        if checkpoint not in before and not (checkpoint / _TRAINER_STATE_NAME).is_file():
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


def load_checkpoint_config(name_or_path: str):
    """The configuration of a checkpoint (local folder or Hub id), or a `BermoUsageError` saying it is neither."""
    from transformers import AutoConfig

    if Path(name_or_path).is_file():
        raise BermoUsageError(f"{name_or_path} is a file; give the checkpoint's folder or a Hub id.")
    try:
        return AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        if Path(name_or_path).is_dir():
            raise BermoUsageError(f"{name_or_path} is not a model folder (no usable config.json).") from None
        raise BermoUsageError(
            f"{name_or_path} is neither a local folder nor a reachable Hub model id ({str(error).splitlines()[0]})"
        ) from None
