"""The probing report: results grouped and averaged, written as JSON, Markdown and a heat-map.

`summarize` turns the per-task results of a run (BERT's and BERMo's accuracies in %, optionally BERMo's layer weights
and each depth's probe accuracy) into the report: tasks in SentEval's order with the difference BERMo - BERT, and
per-group and overall averages. `format_markdown` and `plot_heatmap` render it; `write_outputs` writes
`RESULTS_JSON`, `RESULTS_MARKDOWN` and `HEATMAP_PNG` into a folder. This module reads results only; it runs nothing.
"""

import json
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..layer_weights import LayerWeights
from ..output_folders import final_files_written_atomically
from .data import GROUPS, SENTEVAL_TASKS

RESULTS_JSON = "probe_results.json"
RESULTS_MARKDOWN = "probe_results.md"
HEATMAP_PNG = "probe_heatmap.png"
# What the markdown calls the model without the mix when the report does not name its family (reports of earlier
# versions).
PLAIN_MODEL = "plain model"


def summarize(
    task_results: dict[str, dict],
    mode: str,
    settings: dict | None = None,
    pending: Sequence[str] = (),
    plain_model: str = PLAIN_MODEL,
) -> dict:
    """The report: `task_results` (keyed by task name, each with `bert` and `bermo` accuracies in %, optionally
    `layer_weights` as `LayerWeights.to_dict()`) in SentEval's task order with the difference BERMo - BERT, plus
    per-group (surface, syntactic, semantic) and overall averages. `pending`: the tasks of the run not finished yet
    (a partial report, written while the run goes on). `plain_model`: the name the report gives the model without the
    mix (the checkpoint's family, "BERT", "MPNet", ...; the results keep the key `bert` for it whatever the family)."""
    tasks = {}
    for task in SENTEVAL_TASKS:
        if task.name not in task_results:
            continue
        entry = dict(task_results[task.name])
        entry.setdefault("group", task.group)
        entry.setdefault("task", task.short_name)
        entry["difference"] = entry["bermo"] - entry["bert"]
        tasks[task.name] = entry
    groups = {}
    for group in GROUPS:
        members = [name for name, entry in tasks.items() if entry["group"] == group]
        if members:
            groups[group] = _average([tasks[name] for name in members]) | {"tasks": members}
    overall = _average(list(tasks.values())) if tasks else {}
    return {
        "mode": mode,
        "settings": settings or {},
        "tasks": tasks,
        "groups": groups,
        "overall": overall,
        "pending": list(pending),
        "plain_model": plain_model,
    }


def _average(entries: list[dict]) -> dict:
    bert = statistics.fmean(entry["bert"] for entry in entries)
    bermo = statistics.fmean(entry["bermo"] for entry in entries)
    return {"bert": bert, "bermo": bermo, "difference": bermo - bert}


def format_markdown(report: dict) -> str:
    """The report as markdown: the plain model vs BERMo per task and group, BERMo's layer weights, per-depth probe
    accuracy."""
    plain = report.get("plain_model", PLAIN_MODEL)
    lines = _header(report)
    lines += ["", f"| Group | Task | {plain} | BERMo | Δ | Expected layer |", "|---|---|---:|---:|---:|---:|"]
    for group, summary in report["groups"].items():
        for name in summary["tasks"]:
            entry = report["tasks"][name]
            layer = f"{entry['layer_weights']['expected_layer']:.2f}" if entry.get("layer_weights") else ""
            lines.append(
                f"| {group} | {entry['task']} | {entry['bert']:.2f} | {entry['bermo']:.2f} "
                f"| {_signed(entry['difference'])} | {layer} |"
            )
        lines.append(_average_row(f"{group} average", summary))
    if report["overall"]:
        lines.append(_average_row("all tasks", report["overall"]))

    weighted = [entry for entry in report["tasks"].values() if entry.get("layer_weights")]
    if weighted:
        depths = weighted[0]["layer_weights"]["depths"]
        lines += ["", "BERMo's learned layer weights softmax(w) per depth, gamma, and expected layer sum_j j*s_j.", ""]
        lines.append("| Task | " + " | ".join(depths) + " | gamma | Expected layer |")
        lines.append("|---|" + "---:|" * (len(depths) + 2))
        for entry in weighted:
            mix = entry["layer_weights"]
            cells = " | ".join(f"{w:.3f}" for w in mix["weights"])
            lines.append(f"| {entry['task']} | {cells} | {mix['gamma']:.3f} | {mix['expected_layer']:.2f} |")

    probed = [entry for entry in report["tasks"].values() if entry.get("depth_accuracy")]
    if probed:
        depths = _depth_names(len(probed[0]["depth_accuracy"]))
        lines += ["", "Test accuracy (%) of the logistic-regression probe on each depth.", ""]
        lines.append("| Task | " + " | ".join(depths) + " |")
        lines.append("|---|" + "---:|" * len(depths))
        for entry in probed:
            lines.append(f"| {entry['task']} | " + " | ".join(f"{a:.2f}" for a in entry["depth_accuracy"]) + " |")
    return "\n".join(lines) + "\n"


def _header(report: dict) -> list[str]:
    """The report's title, what its figures are, and whether tasks are still to run."""
    settings, plain = report.get("settings", {}), report.get("plain_model", PLAIN_MODEL)
    title = "frozen checkpoint, linear probes" if report["mode"] == "frozen" else "fine-tuned"
    lines = [f"## SentEval probing ({title}): `{settings.get('model_name_or_path', '?')}`", ""]
    if report["mode"] == "frozen":
        lines.append(
            f"Test accuracy (%). {plain}: logistic regression on the last layer; BERMo: linear probe on the learned "
            f"mix of every depth; `{settings.get('pooling', 'first')}` pooling."
        )
    else:
        lines.append(
            f"Test accuracy (%), epoch selected on va; {plain} and BERMo share every hyper-parameter and seed."
        )
    if report.get("pending"):
        lines += [
            "",
            f"**Partial report**: {len(report['pending'])} task(s) not run yet ({', '.join(report['pending'])}); "
            "`bermo probe --resume` with the same flags runs them.",
        ]
    return lines


def _average_row(label: str, summary: dict) -> str:
    return (
        f"| **{label}** | | **{summary['bert']:.2f}** | **{summary['bermo']:.2f}** "
        f"| **{_signed(summary['difference'])}** | |"
    )


def _signed(points: float) -> str:
    return f"{round(points, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"


def plot_heatmap(report: dict, path: str | os.PathLike) -> None:
    """A task x depth heat-map PNG: BERMo's layer weights, and in frozen mode each depth's probe accuracy."""
    from matplotlib.figure import Figure

    panels = []  # (title, number format, task entries, task x depth matrix, depth names)
    weighted = [entry for entry in report["tasks"].values() if entry.get("layer_weights")]
    if weighted:
        matrix = np.array([entry["layer_weights"]["weights"] for entry in weighted])
        names = weighted[0]["layer_weights"]["depths"]
        panels.append(("BERMo layer weights softmax(w)", "{:.2f}", weighted, matrix, names))
    probed = [entry for entry in report["tasks"].values() if entry.get("depth_accuracy")]
    if probed:
        matrix = np.array([entry["depth_accuracy"] for entry in probed])
        names = _depth_names(matrix.shape[1])
        panels.append(("probe accuracy per depth (%)", "{:.1f}", probed, matrix, names))
    if not panels:
        return
    num_depths = max(matrix.shape[1] for *_, matrix, _ in panels)
    num_tasks = max(matrix.shape[0] for *_, matrix, _ in panels)
    figure = Figure(figsize=(len(panels) * (3.0 + 0.7 * num_depths), 1.6 + 0.45 * num_tasks), layout="constrained")
    for axes, (title, fmt, entries, matrix, names) in zip(
        figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True
    ):
        image = axes.imshow(matrix, aspect="auto", cmap="viridis")
        figure.colorbar(image, ax=axes)
        axes.set_title(title)
        axes.set_xlabel("depth")
        axes.set_xticks(range(matrix.shape[1]), names, rotation=45, ha="right")
        axes.set_yticks(range(len(entries)), [f"{entry['task']} ({entry['group']})" for entry in entries])
        threshold = (matrix.max() + matrix.min()) / 2
        for (row, column), value in np.ndenumerate(matrix):
            color = "black" if value > threshold else "white"
            axes.text(column, row, fmt.format(value), ha="center", va="center", fontsize=7, color=color)
    figure.savefig(path, dpi=120, format="png")


def _depth_names(num_depths: int) -> list[str]:
    return LayerWeights([0.0] * num_depths, gamma=1.0).depth_names


def write_outputs(report: dict, output_dir: str | os.PathLike) -> dict[str, Path]:
    """Writes the JSON, markdown and heat-map (with matplotlib) of `report` into `output_dir`, staged and renamed into
    place together (`output_folders.final_files_written_atomically`): each file appears whole or not at all, and
    nothing else in `output_dir` is touched. Returns the written files by name."""
    output_dir = Path(output_dir)
    writers = {
        RESULTS_JSON: lambda path: Path(path).write_text(json.dumps(report, indent=2) + "\n"),
        RESULTS_MARKDOWN: lambda path: Path(path).write_text(format_markdown(report)),
        HEATMAP_PNG: lambda path: plot_heatmap(report, path),
    }
    with final_files_written_atomically(output_dir, merged_files=()) as staging:
        for name, write in writers.items():
            write(staging / name)
        written = {name: output_dir / name for name in writers if (staging / name).is_file()}
    return written
