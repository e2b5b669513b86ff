"""`bermo probe --mode finetune` run once per seed, set side by side: BERT and BERMo per task and seed, the
per-seed difference and its mean over seeds, and the same for `bermo probe`'s group averages.

    python bench/probe_seeds.py bench/results/senteval_sample_finetune_seed{0,1,2} --plain BERT --label MiniLM-L6 \
        --figure bench/figures/senteval_sample_finetune.png

Reads each folder's `probe_results.json` and prints a Markdown table (the one in BENCHMARKS.md); with `--figure PATH`
also draws the seed-level view: each seed's difference BERMo - plain model per task and group average (a strip plot),
beside the paper's semantic-average gain. Trains nothing.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

from bermo_hf.probing import GROUPS, RESULTS_JSON

# The paper's gain of BERMo over BERT on the semantic average of SentEval's probing tasks (fine-tuned, BERT-base).
PAPER_SEMANTIC_GAIN = 2.67


def load_runs(folders: list[str], finished_only: bool = False) -> list[dict]:
    """The fine-tune reports of `folders`, which must cover the same tasks; with `finished_only`, partial reports
    too, cut to the tasks that every one of them has finished."""
    runs = [json.loads((Path(folder) / RESULTS_JSON).read_text()) for folder in folders]
    for folder, run in zip(folders, runs, strict=True):
        if run.get("pending") and not finished_only:
            raise SystemExit(f"probe_seeds.py: {folder} is a partial report (not run yet: {', '.join(run['pending'])})")
    if finished_only:
        common = [name for name in runs[0]["tasks"] if all(name in run["tasks"] for run in runs)]
        runs = [run | {"tasks": {name: run["tasks"][name] for name in common}} for run in runs]
    tasks = [list(run["tasks"]) for run in runs]
    if any(run["mode"] != "finetune" for run in runs) or any(names != tasks[0] for names in tasks):
        raise SystemExit("probe_seeds.py: every folder must hold a fine-tune report of the same tasks")
    return runs


def _cells(values: list[float], signed: bool = False) -> str:
    return ", ".join(f"{value:+.2f}" if signed else f"{value:.2f}" for value in values)


def plain_name(runs: list[dict]) -> str:
    """The plain model's family ("BERT", "MPNet", ...): the reports' own name for it, or else (reports of earlier
    versions) read from the checkpoint they name."""
    import bench_common

    if runs[0].get("plain_model"):
        return runs[0]["plain_model"]
    checkpoint = runs[0].get("settings", {}).get("model_name_or_path")
    if not checkpoint or not Path(checkpoint).is_dir():
        raise SystemExit(
            f"probe_seeds.py: the reports' checkpoint {checkpoint} is not here; name its family with --plain"
        )
    return bench_common.family_name(checkpoint)


def _group_average(run: dict, group: str) -> dict:
    entries = [entry for entry in run["tasks"].values() if entry["group"] == group]
    return {key: statistics.fmean(entry[key] for entry in entries) for key in ("bert", "bermo")}


def seed_rows(runs: list[dict]) -> list[tuple[str, str, list[float], list[float]]]:
    """Per task, then per group average: (group, task, plain model's accuracy per seed, BERMo's per seed)."""
    rows = [
        (entry["group"], entry["task"], [run["tasks"][name] for run in runs])
        for name, entry in runs[0]["tasks"].items()
    ]
    rows += [  # over the tasks set out above (`bermo probe`'s own group averages when the reports are complete)
        (f"**{group} average**", "", [_group_average(run, group) for run in runs])
        for group in GROUPS
        if any(entry["group"] == group for entry in runs[0]["tasks"].values())
    ]
    return [(group, task, [e["bert"] for e in entries], [e["bermo"] for e in entries]) for group, task, entries in rows]


def seeds_table(runs: list[dict], plain: str = "BERT") -> str:
    """Per task, then per group: the plain model per seed, BERMo per seed, BERMo - plain per seed and its mean."""
    lines = [
        f"| group | task | {plain}, per seed | BERMo, per seed | BERMo - {plain}, per seed | mean difference |",
        "|---|---|---|---|---|---:|",
    ]
    for group, task, bert, bermo in seed_rows(runs):
        differences = [after - before for before, after in zip(bert, bermo, strict=True)]
        lines.append(
            f"| {group} | {task} | {_cells(bert)} | {_cells(bermo)} | {_cells(differences, signed=True)} | "
            f"{statistics.mean(differences):+.2f} |"
        )
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], path: str | Path, title: str, plain: str = "BERT") -> Path:
    """Each seed's BERMo - plain difference per task and group average (one point per seed, in the order of the
    folders), their mean (a bar), zero and the paper's semantic-average gain (BERT-base, for reference)."""
    import matplotlib

    matplotlib.use("Agg")
    import bench_common
    import matplotlib.pyplot as plt

    rows = seed_rows(runs)
    figure, axes = plt.subplots(figsize=(1.0 * len(rows) + 2.5, 4.5))
    for position, (group, task, bert, bermo) in enumerate(rows):
        differences = [after - before for before, after in zip(bert, bermo, strict=True)]
        average = not task
        color = "black" if average else ("tab:green" if group == "semantic" else "tab:purple")
        for seed, difference in enumerate(differences):
            x = position + 0.1 * (seed - (len(differences) - 1) / 2)
            axes.scatter(x, difference, color=color, s=22, zorder=3)
        axes.hlines(statistics.mean(differences), position - 0.3, position + 0.3, color=color, linewidth=2)
    semantic = next((i for i, row in enumerate(rows) if row[0] == "**semantic average**"), None)
    if semantic is not None:
        axes.scatter(semantic + 0.35, PAPER_SEMANTIC_GAIN, marker="*", s=90, color="tab:red", zorder=3)
        axes.annotate(
            f"paper: +{PAPER_SEMANTIC_GAIN}",
            (semantic + 0.35, PAPER_SEMANTIC_GAIN),
            xytext=(-20, 8),
            textcoords="offset points",
            fontsize=8,
            color="tab:red",
        )
    axes.axhline(0, color="grey", linewidth=1)
    axes.set_ylim(top=max(axes.get_ylim()[1], PAPER_SEMANTIC_GAIN + 0.8))
    names = [task or group.strip("*").replace(" average", "\naverage") for group, task, *_ in rows]
    axes.set_xticks(range(len(rows)), names, fontsize=8)
    axes.set_ylabel(f"BERMo - {plain}, test accuracy (points)")
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return bench_common.save_figure(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="output folders of `bermo probe --mode finetune`, one per seed")
    parser.add_argument("--figure", help="also write the seed-level figure (PNG) here")
    parser.add_argument("--plain", help="the plain model's name in the table (default: the reports' name for it)")
    parser.add_argument(
        "--finished_only", action="store_true", help="take partial reports, cut to the tasks every one has finished"
    )
    parser.add_argument("--label", help="the checkpoint's name in the figure's title (default: its folder's name)")
    args = parser.parse_args(argv)
    runs = load_runs(args.folders, args.finished_only)
    plain = args.plain or plain_name(runs)
    print(seeds_table(runs, plain), end="")
    if args.figure:
        checkpoint = args.label or Path(runs[0].get("settings", {}).get("model_name_or_path", "")).name
        title = f"Fine-tuned SentEval probing, {checkpoint}: BERMo - {plain} per seed ({len(runs)} seeds), bar: mean"
        print(f"wrote {plot(runs, args.figure, title, plain)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
