"""Resuming `bermo probe`: what a report's results were made from, and the run a report records.

A report records its settings and, by content, its inputs (`run_inputs`: the checkpoint's fingerprint and each
SentEval file's). `recorded_run` reads the report in an output folder for `--resume` and refuses it, naming everything
that differs, unless its finished tasks were made in the same mode, with the same settings and from the same inputs as
the run about to continue them.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ProbingError
from ..output_folders import folder_contents
from .data import TaskData
from .features import checkpoint_fingerprint, file_fingerprint
from .report import RESULTS_JSON

# Settings that do not change a task's result: a recorded task is reused under other values of these. The checkpoint
# and the SentEval files are compared by their content (the report's `inputs`), not by the paths given.
SETTINGS_NOT_IN_RESULTS = (
    "model_name_or_path",
    "data_dir",
    "output_dir",
    "overwrite_output_dir",
    "resume",
    "tasks",
    "cache_dir",
)


@dataclass
class RecordedRun:
    """What `--resume` takes from the output folder's report: finished task results, the tasks it had still to run,
    and the fingerprints of the inputs it was made from."""

    tasks: dict[str, dict] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)


def run_inputs(args, tasks: list[TaskData]) -> dict:
    """What a report's results were made from, by content (`args`: the run's `ProbingArguments`): the checkpoint's
    fingerprint and each SentEval file's."""
    return {
        "checkpoint": checkpoint_fingerprint(args.model_name_or_path),
        "data": {data.task.name: file_fingerprint(data.path) for data in tasks},
    }


def recorded_run(args, inputs: dict) -> RecordedRun:
    """The run that `args.output_dir`'s report records, for `--resume` (`args`: the run's `ProbingArguments`); an
    empty one when the folder is missing or empty (or holds only the feature cache), or with
    `args.overwrite_output_dir` when it holds no report.

    `ProbingError`, naming what differs, when the folder holds other files but no report, when the report cannot be
    read, or when it was made in another mode, with other settings (`SETTINGS_NOT_IN_RESULTS` may differ), from
    another checkpoint, or from a SentEval file (of a finished task) whose content has changed since (`inputs`, as
    `run_inputs` gives them)."""
    output_dir = Path(args.output_dir)
    path = output_dir / RESULTS_JSON
    if not path.is_file():
        others = folder_contents(output_dir, ignored=("feature_cache",))
        if others and not args.overwrite_output_dir:
            raise ProbingError(
                f"{output_dir} holds {others} but no {RESULTS_JSON} to resume from: choose another output folder, or "
                "pass --overwrite_output_dir without --resume to start a new run in it."
            )
        return RecordedRun()
    recorded, recorded_settings = _read_report(path)
    differences = _differences({"mode": args.mode} | asdict(args), recorded_settings)
    if recorded.inputs["checkpoint"] != inputs["checkpoint"]:
        differences.append(
            f"the checkpoint: {args.model_name_or_path}'s configuration, weights or tokenizer are not those of that run"
        )
    for name, fingerprint in inputs["data"].items():
        if name in recorded.tasks and recorded.inputs["data"][name] != fingerprint:
            differences.append(f"the SentEval file of {name}: its content changed since that run")
    if differences:
        raise ProbingError(
            f"{path} was made with other settings or inputs ({'; '.join(differences)}): resume with the flags and "
            "files of that run, or choose another output folder."
        )
    return recorded


def _read_report(path: Path) -> tuple[RecordedRun, dict]:
    """The run a report records and its settings (its mode included); `ProbingError` when it is not one."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        recorded = RecordedRun(dict(report["tasks"]), list(report["pending"]), dict(report["inputs"]))
        settings = {"mode": report["mode"]} | dict(report["settings"])
        recorded.inputs["checkpoint"]
        for name, entry in recorded.tasks.items():
            if not all(isinstance(entry[key], int | float) for key in ("bert", "bermo")):
                raise TypeError(f"task {name}: accuracies are not numbers")
            recorded.inputs["data"][name]  # a KeyError when the file of a finished task has no fingerprint
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ProbingError(
            f"{path}: not a report that `bermo probe --resume` can continue (reading it failed at {error!r}; reports "
            "of earlier versions record no input fingerprints); choose another output folder."
        ) from error
    return recorded, settings


def _differences(settings: dict, recorded_settings: dict) -> list[str]:
    """`settings` that `recorded_settings` lacks or holds another value of, `SETTINGS_NOT_IN_RESULTS` aside."""
    differences = []
    for key, value in settings.items():
        if key in SETTINGS_NOT_IN_RESULTS:
            continue
        if key not in recorded_settings:
            differences.append(f"{key} not recorded there, {value!r} now")
        elif recorded_settings[key] != value:
            differences.append(f"{key}={recorded_settings[key]!r} there, {value!r} now")
    return differences
