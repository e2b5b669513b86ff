"""Output folders and files: claiming a folder, and writing files so that each appears whole or not at all.

Output folders are never wiped: a non-empty one is refused unless the caller says to write into it (`check_output_dir`,
`prepare_output_dir`), and even then only the files written are replaced.

Final files are written into a hidden staging folder inside the output folder and then renamed into place one by one
(`final_files_written_atomically`), so they appear complete or not at all; the output folder itself is never removed
or renamed, whatever it is (the working directory, the home folder ...). A single file outside such a step (a cache
entry) is written beside its place and renamed into it (`write_file_atomically`). Checkpoints are written straight
into the output folder by the `Trainer`.

This module is the one place of the package that renames files into place.
"""

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .checkpoints import checkpoint_folders
from .errors import BermoUsageError

# Where final files are staged inside the output folder before they are renamed into place.
STAGING_DIRNAME = ".bermo-partial"
# Files of the output folder that are merged into (copied into the staging folder first) rather than replaced.
MERGED_FILES = ("README.md",)
OVERWRITE_FLAG = "--overwrite_output_dir"


def check_output_dir(output_dir: str | Path, overwrite: bool, resuming: bool = False) -> None:
    """Raises `BermoUsageError` (one line naming the folder) when `output_dir` is a file, or a non-empty folder while
    neither `overwrite` (`--overwrite_output_dir`) nor `resuming` (continuing from one of its own checkpoints) is set.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise BermoUsageError(f"{output_dir} exists and is not a folder.")
    if overwrite or resuming or not output_dir.is_dir():
        return
    shown = folder_contents(output_dir)
    if shown:
        advice = ""
        if checkpoint_folders(output_dir):
            advice = "; to continue its training, pass --resume_from_checkpoint last"
        raise BermoUsageError(
            f"{output_dir} already exists and is not empty ({shown}); pass {OVERWRITE_FLAG} to write into it (only "
            f"the files this command writes are replaced, nothing else is removed){advice}, or choose another output "
            "folder."
        )


def folder_contents(output_dir: str | Path, ignored: tuple[str, ...] = ()) -> str:
    """The names in `output_dir` besides the staging folder and `ignored`, the first five listed as "a, b, ...";
    "" when there are none (or no such folder)."""
    output_dir = Path(output_dir)
    names = [] if not output_dir.is_dir() else sorted(path.name for path in output_dir.iterdir())
    entries = [name for name in names if name != STAGING_DIRNAME and name not in ignored]
    return ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")


def write_file_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Runs `write(staging_path)` on a hidden file beside `path` (in the same folder, created if missing), then renames
    it to `path`: `path` is the complete new file or what it was before, never half a file. When `write` fails, the
    staging file is removed and nothing else is touched. Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(descriptor)
    try:
        write(Path(staging))
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


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


@contextmanager
def files_written_into(output_dir: str | Path, overwrite: bool, merged_files=MERGED_FILES) -> Iterator[Path]:
    """`prepare_output_dir`, then `final_files_written_atomically`: yields the staging folder. An `output_dir` that
    this call created is removed again when the block fails (nothing was moved into it), so a failed command leaves
    no trace; an existing one is left as it was."""
    created = prepare_output_dir(output_dir, overwrite=overwrite)
    try:
        with final_files_written_atomically(output_dir, merged_files) as staging:
            yield staging
    except BaseException:
        if created:
            Path(output_dir).rmdir()
        raise


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


def prepare_training_output_dir(output_dir: Path, overwrite: bool, resume: str | None, training_args) -> bool:
    """Checks and creates `bermo train`'s (or `bermo prune`'s) OUTPUT_DIR; returns whether it was created.

    Besides `prepare_output_dir`'s rules: `--overwrite_output_dir` into a folder that holds checkpoints of an earlier
    run is refused when this run saves checkpoints, since the Trainer's `--save_total_limit` rotation would delete
    them."""
    resuming = resume is not None and output_dir.absolute() in Path(resume).absolute().parents
    earlier = checkpoint_folders(output_dir)
    if overwrite and earlier and not resuming and training_args.save_strategy != "no":
        raise BermoUsageError(
            f"{output_dir} holds checkpoints of an earlier run ({', '.join(path.name for path in earlier[:3])}"
            f"{', ...' if len(earlier) > 3 else ''}) that this run's checkpoint rotation would delete; continue that "
            "run with --resume_from_checkpoint last, move them away, or choose another --output_dir."
        )
    return prepare_output_dir(output_dir, overwrite=overwrite, resuming=resuming)
