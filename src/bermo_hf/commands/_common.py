"""Conventions every `bermo` command follows: bad input is one line on stderr, an output folder is whole or absent."""

import functools
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import BermoError


class BermoUsageError(BermoError):
    """A problem with what the user asked for (a missing file, a missing column, ...).

    The `bermo` commands print its message as one line on stderr and exit with status 1, without a traceback."""


def reports_usage_errors(command: str) -> Callable:
    """Decorates a command's `main(argv) -> int` so that a `BermoError` (a `BermoUsageError` included) becomes
    `bermo COMMAND: error: message` on stderr and exit status 1."""

    def decorate(main: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
        @functools.wraps(main)
        def wrapped(argv: list[str]) -> int:
            try:
                return main(argv)
            except BermoError as error:
                print(f"bermo {command}: error: {error}", file=sys.stderr)
                return 1

        return wrapped

    return decorate


def partial_dir_for(final_dir: str | Path) -> Path:
    """Where an output folder is written before it is complete: `.NAME.partial` beside it."""
    final_dir = Path(final_dir).absolute()
    return final_dir.with_name(f".{final_dir.name}.partial")


@contextmanager
def output_dir_written_atomically(final_dir: str | Path, keep_partial: bool = False) -> Iterator[Path]:
    """Yields an empty folder beside `final_dir` to write into; when the block succeeds, that folder replaces
    `final_dir` (an existing `final_dir` is removed), and when it fails, it is removed: `final_dir` is always either
    complete or as it was.

    Multi-process safe: every process gets the same folder, only the main one creates, moves and deletes, and all wait
    for each other around those steps. `keep_partial` keeps the contents of a partial folder left by an interrupted
    run (to resume from one of its checkpoints)."""
    from accelerate import PartialState

    state = PartialState()
    final_dir = Path(final_dir).absolute()
    partial_dir = partial_dir_for(final_dir)
    if final_dir.exists() and not final_dir.is_dir():
        raise BermoUsageError(f"{final_dir} exists and is not a folder.")
    if state.is_main_process:
        if partial_dir.exists() and not keep_partial:
            shutil.rmtree(partial_dir)
        partial_dir.mkdir(parents=True, exist_ok=True)
    state.wait_for_everyone()
    try:
        yield partial_dir
    except BaseException:
        if state.is_main_process and not keep_partial:
            shutil.rmtree(partial_dir, ignore_errors=True)
        raise
    state.wait_for_everyone()
    if state.is_main_process:
        replaced_dir = final_dir.with_name(f".{final_dir.name}.replaced")
        if final_dir.exists():
            shutil.rmtree(replaced_dir, ignore_errors=True)
            final_dir.rename(replaced_dir)
        partial_dir.rename(final_dir)
        shutil.rmtree(replaced_dir, ignore_errors=True)
    state.wait_for_everyone()


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
