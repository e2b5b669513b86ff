"""`bermo probe --mode finetune` run once per seed, set side by side: BERT and BERMo per task and seed, the
per-seed difference and its mean over seeds, and the same for `bermo probe`'s group averages.

    python bench/probe_seeds.py bench/results/senteval_sample_finetune_seed0 \
        bench/results/senteval_sample_finetune_seed1 bench/results/senteval_sample_finetune_seed2

Reads each folder's `probe_results.json` and prints a Markdown table (the one in BENCHMARKS.md); trains nothing.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

from bermo_hf.probing import GROUPS, RESULTS_JSON


def load_runs(folders: list[str]) -> list[dict]:
    """The fine-tune reports of `folders`, which must cover the same tasks."""
    runs = [json.loads((Path(folder) / RESULTS_JSON).read_text()) for folder in folders]
    for folder, run in zip(folders, runs, strict=True):
        if run.get("pending"):
            raise SystemExit(f"probe_seeds.py: {folder} is a partial report (not run yet: {', '.join(run['pending'])})")
    tasks = [list(run["tasks"]) for run in runs]
    if any(run["mode"] != "finetune" for run in runs) or any(names != tasks[0] for names in tasks):
        raise SystemExit("probe_seeds.py: every folder must hold a fine-tune report of the same tasks")
    return runs


def _cells(values: list[float], signed: bool = False) -> str:
    return ", ".join(f"{value:+.2f}" if signed else f"{value:.2f}" for value in values)


def seeds_table(runs: list[dict]) -> str:
    """Per task, then per group: BERT per seed, BERMo per seed, BERMo - BERT per seed and its mean."""
    lines = [
        "| group | task | BERT, per seed | BERMo, per seed | BERMo - BERT, per seed | mean difference |",
        "|---|---|---|---|---|---:|",
    ]
    rows = [
        (entry["group"], entry["task"], [run["tasks"][name] for run in runs])
        for name, entry in runs[0]["tasks"].items()
    ]
    rows += [
        (f"**{group} average**", "", [run["groups"][group] for run in runs])
        for group in GROUPS
        if group in runs[0]["groups"]
    ]
    for group, task, entries in rows:
        bert = [entry["bert"] for entry in entries]
        bermo = [entry["bermo"] for entry in entries]
        differences = [after - before for before, after in zip(bert, bermo, strict=True)]
        lines.append(
            f"| {group} | {task} | {_cells(bert)} | {_cells(bermo)} | {_cells(differences, signed=True)} | "
            f"{statistics.mean(differences):+.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="output folders of `bermo probe --mode finetune`, one per seed")
    args = parser.parse_args(argv)
    print(seeds_table(load_runs(args.folders)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
