"""The SentEval probing files: the task table and reading them, checked.

`SENTEVAL_TASKS` names the ten tasks of Conneau et al. (2018) with their file stem, SentEval name, paper name and group
(surface, syntactic, semantic). Each file holds one ``split<TAB>label<TAB>sentence`` line per example, ``split`` being
``tr``, ``va`` or ``te``; `read_senteval_file` reads one and refuses a malformed line with a `ProbingError` naming the
file and line, `load_task` turns it into a `TaskData` (class ids, optional seeded subsampling) and `load_senteval` reads
a folder of them.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ProbingError

GROUPS = ("surface", "syntactic", "semantic")
SPLITS = ("tr", "va", "te")


@dataclass(frozen=True)
class SentEvalTask:
    """One SentEval probing task: `name` is its file's stem, `senteval_name` SentEval's name for it and
    `short_name` the one of Conneau et al.'s paper (the tables' names)."""

    name: str
    senteval_name: str
    short_name: str
    group: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.txt"


SENTEVAL_TASKS = (
    SentEvalTask("sentence_length", "Length", "SentLen", "surface"),
    SentEvalTask("word_content", "WordContent", "WC", "surface"),
    SentEvalTask("tree_depth", "Depth", "TreeDepth", "syntactic"),
    SentEvalTask("top_constituents", "TopConstituents", "TopConst", "syntactic"),
    SentEvalTask("bigram_shift", "BigramShift", "BShift", "syntactic"),
    SentEvalTask("past_present", "Tense", "Tense", "semantic"),
    SentEvalTask("subj_number", "SubjNumber", "SubjNum", "semantic"),
    SentEvalTask("obj_number", "ObjNumber", "ObjNum", "semantic"),
    SentEvalTask("odd_man_out", "OddManOut", "SOMO", "semantic"),
    SentEvalTask("coordination_inversion", "CoordinationInversion", "CoordInv", "semantic"),
)


def senteval_task(name: str) -> SentEvalTask:
    """The task called `name`: its file (`bigram_shift.txt`), file stem, SentEval name (`BigramShift`) or paper
    name (`BShift`), in any case."""
    for task in SENTEVAL_TASKS:
        if name.lower() in (task.name, task.file_name, task.senteval_name.lower(), task.short_name.lower()):
            return task
    known = ", ".join(task.name for task in SENTEVAL_TASKS)
    raise ProbingError(f"unknown SentEval task {name!r}; choose among: {known}.")


@dataclass
class TaskData:
    """One task's examples: `sentences[split]` and `labels[split]` (class ids into `label_names`)."""

    task: SentEvalTask
    path: Path
    label_names: list[str]
    sentences: dict[str, list[str]]
    labels: dict[str, list[int]]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def read_senteval_file(path: str | os.PathLike) -> dict[str, list[tuple[str, str]]]:
    """Reads a SentEval probing file into `{split: [(label, sentence), ...]}` for the splits `tr`, `va`, `te`.

    A line holds at least three tab-separated fields, as SentEval reads them: the split, the label, ..., and the
    sentence last. Blank lines are skipped. Raises `ProbingError` naming the file and line for a missing file, a line
    with fewer fields (or not UTF-8), an unknown split, an empty label or sentence, and a split without any line."""
    path = Path(path)
    examples = {split: [] for split in SPLITS}
    try:
        with path.open("rb") as file:
            for line_number, raw in enumerate(file, start=1):
                where = f"{path}, line {line_number}"
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as error:
                    raise ProbingError(f"{where}: not valid UTF-8 ({error.reason}).") from None
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) < 3:
                    raise ProbingError(
                        f"{where}: expected split<TAB>label<TAB>sentence, found {len(fields)} tab-separated field(s)."
                    )
                split, label, sentence = fields[0].strip(), fields[1].strip(), fields[-1].strip()
                if split not in examples:
                    raise ProbingError(f"{where}: unknown split {split!r}; expected tr, va or te.")
                if not label or not sentence:
                    raise ProbingError(f"{where}: empty {'label' if not label else 'sentence'}.")
                examples[split].append((label, sentence))
    except FileNotFoundError:
        raise ProbingError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise ProbingError(f"{path}: is a folder, not a SentEval file.") from None
    for split, rows in examples.items():
        if not rows:
            raise ProbingError(f"{path}: no {split!r} line; a SentEval file holds tr, va and te lines.")
    return examples


def load_task(
    path: str | os.PathLike,
    task: SentEvalTask,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 42,
) -> TaskData:
    """Reads one task's file; `tr` is randomly subsampled to `max_train_samples`, `va` and `te` each to
    `max_eval_samples` (seeded, original order kept). Class ids index the labels found in the whole file. Raises
    `ProbingError` as `read_senteval_file` does, and when `tr` holds a single label."""
    examples = read_senteval_file(path)
    label_names = sorted({label for rows in examples.values() for label, _ in rows}, key=_label_sort_key)
    label_ids = {name: index for index, name in enumerate(label_names)}
    rng = np.random.default_rng(seed)
    sentences, labels = {}, {}
    for split, rows in examples.items():
        limit = max_train_samples if split == "tr" else max_eval_samples
        if limit is not None and limit < len(rows):
            rows = [rows[i] for i in sorted(rng.choice(len(rows), size=limit, replace=False))]
        sentences[split] = [sentence for _, sentence in rows]
        labels[split] = [label_ids[label] for label, _ in rows]
    if len(set(labels["tr"])) < 2:
        raise ProbingError(f"{path}: the tr split holds a single label (after subsampling); nothing to learn.")
    return TaskData(task, Path(path), label_names, sentences, labels)


def load_senteval(
    data_dir: str | os.PathLike,
    tasks: Sequence[str] | None = None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 42,
) -> list[TaskData]:
    """Reads the SentEval files in `data_dir`: the `tasks` named (each file must exist), or every task whose file is
    there. Tasks come back in SentEval's order (surface, syntactic, semantic)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ProbingError(
            f"{data_dir}: no such folder (--data_dir must hold SentEval files such as past_present.txt)."
        )
    if tasks:
        wanted = {senteval_task(name) for name in tasks}
        chosen = [task for task in SENTEVAL_TASKS if task in wanted]
    else:
        chosen = [task for task in SENTEVAL_TASKS if (data_dir / task.file_name).is_file()]
        if not chosen:
            expected = ", ".join(task.file_name for task in SENTEVAL_TASKS)
            raise ProbingError(f"{data_dir}: holds no SentEval probing file; expected any of {expected}.")
    return [load_task(data_dir / task.file_name, task, max_train_samples, max_eval_samples, seed) for task in chosen]


def _label_sort_key(label: str):
    return (0, int(label), label) if label.lstrip("-").isdigit() else (1, 0, label)
