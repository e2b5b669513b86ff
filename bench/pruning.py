"""Pruning BERT and BERMo on GLUE SST-2: accuracy and stability under magnitude and soft-movement pruning.

Every run fine-tunes from the same pretrained checkpoint with `bermo prune`'s trainer (`PruningBermoTrainer`: the
standard `Trainer`, the layer mix in its own optimizer group, the pruning masks on the encoder's linear weights).
BERT and BERMo start from identical weights (BERT's fresh classifier and pooler are copied into BERMo, so only the
layer mix differs) and, per seed, see the same data order and dropout stream.

- Magnitude pruning (Zhu & Gupta's cubic schedule, per-matrix) to each `--sparsities` value, for every seed: dev
  accuracy mean +- std and the number of diverged runs (dev accuracy at or below the majority-class rate of the
  evaluated dev sentences + 2 points).
- Soft-movement pruning at each `--penalties` lambda (first seed): dev accuracy against the share of encoder weights
  that remain.

Writes `bench/results/NAME.json` (every run, the summary, the machine and versions), `bench/results/NAME.md` (the
tables) and `bench/figures/NAME.png`.

    python bench/pruning.py --quick   # 2 seeds, 60 steps of 16 per run, 200 dev sentences
    python bench/pruning.py           # 3 seeds, 600 steps per run, the full dev set
    python bench/pruning.py --task rte --sparsities 0.9 --max_steps 234 --batch_size 16 --learning_rate 3e-5

Every finished run is written to the results JSON at once, and rerunning the same command skips the runs recorded
there with the same settings (a long benchmark survives interruptions and spreads over several sittings). To spread
a grid over processes or machines, give each its own `--results_dir` (and `--seeds` or `--models`), then gather their
runs into one file with `--merge_from` (runs are matched by their settings; nothing recorded is trained again):

    python bench/pruning.py --models bert --results_dir runs_a    # one process
    python bench/pruning.py --models bermo --results_dir runs_b   # another, at the same time
    python bench/pruning.py --merge_from runs_a/pruning_sst2.json runs_b/pruning_sst2.json   # tables and figure of both

`--device auto` (the default) trains on CUDA with bf16 when a GPU is present.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bench_common
import recipe

MODELS = ("bert", "bermo")
SHARED_DATA = bench_common.REPO_ROOT.parent / "shared" / "data"
DEFAULT_DATA_DIR = SHARED_DATA / "sst2"
# task -> (text column, text pair column) of its tsv files
TASK_COLUMNS = {"sst2": ("sentence", None), "rte": ("sentence1", "sentence2")}
DIVERGENCE_MARGIN = 0.02

# Every setting that `--quick` changes, and its value in a full run.
FULL = {
    "seeds": [0, 1, 2],
    "max_steps": 600,
    "batch_size": 32,
    "learning_rate": 1e-4,
    "train_subset": None,
    "dev_subset": None,
    "penalties": [10.0, 100.0, 1000.0],
    "scores_learning_rate": 0.1,
    "name": "pruning_sst2",
}
QUICK = {
    "seeds": [0, 1],
    "max_steps": 60,
    "batch_size": 16,
    "learning_rate": 2e-4,
    "train_subset": 2000,
    "dev_subset": 200,
    "penalties": [100.0, 1000.0],
    "scores_learning_rate": 0.5,
    "name": "pruning_sst2_quick",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--model",
        default=bench_common.MINILM,
        help="checkpoint to start from: a folder of any supported family, minilm or mpnet-base (default: minilm)",
    )
    parser.add_argument("--task", choices=list(TASK_COLUMNS), default="sst2", help="GLUE task (default sst2)")
    parser.add_argument("--data_dir", help="folder with the task's train.tsv and dev.tsv (default ../shared/data/TASK)")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA with bf16 when present"
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, few steps, a dev subset: a smoke-size run")
    parser.add_argument("--seeds", type=int, nargs="+", help=f"seeds (default {FULL['seeds']})")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        default=list(MODELS),
        help="run only these models' runs, e.g. to spread a grid over processes (default: both)",
    )
    parser.add_argument(
        "--merge_from",
        nargs="+",
        default=[],
        metavar="JSON",
        help="results files of this benchmark whose runs are added to this one's (each counts as recorded)",
    )
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.8, 0.9, 0.95], help="magnitude targets")
    parser.add_argument(
        "--penalties", type=float, nargs="*", help=f"soft-movement lambdas, none to skip (default {FULL['penalties']})"
    )
    parser.add_argument("--max_steps", type=int, help=f"optimizer steps per run (default {FULL['max_steps']})")
    parser.add_argument("--train_subset", type=int, help="train on the first N sentences (default: all)")
    parser.add_argument("--dev_subset", type=int, help="evaluate on the first N dev sentences (default: all 872)")
    parser.add_argument("--batch_size", type=int, help=f"train batch size (default {FULL['batch_size']})")
    parser.add_argument("--learning_rate", type=float, help=f"model learning rate (default {FULL['learning_rate']})")
    parser.add_argument("--scores_learning_rate", type=float, help="soft-movement scores' learning rate")
    parser.add_argument("--score_threshold", type=float, default=0.1, help="soft-movement's final sigmoid threshold")
    parser.add_argument(
        "--penalty_normalization",
        choices=["per-matrix", "global"],
        default="per-matrix",
        help="soft-movement penalty: per-matrix means averaged (Sanh et al., the default) or one global mean (the "
        "normalization of the published --quick figures)",
    )
    parser.add_argument("--max_length", type=int, default=64, help="truncate sentences to this many tokens")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--name", help="base name of the output files")
    parser.add_argument("--results_dir", default=str(bench_common.RESULTS_DIR))
    parser.add_argument("--figures_dir", default=str(bench_common.FIGURES_DIR))
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.data_dir is None:
        args.data_dir = str(SHARED_DATA / args.task)
    if args.task != "sst2" and args.name in (FULL["name"], QUICK["name"]):
        args.name = args.name.replace("sst2", args.task)
    if args.max_steps < 10:
        parser.error("--max_steps must be at least 10 (the schedule needs warm-up and cool-down steps)")
    return args


def schedule(max_steps: int) -> dict:
    """Pruning schedule of a run: the first 20% of the steps dense, a cubic ramp, the last 30% at the final
    sparsity."""
    return {
        "warmup_steps_pruning": max_steps // 5,
        "cooldown_steps_pruning": max_steps * 3 // 10,
        "pruning_frequency": max(1, max_steps // 50),
    }


def load_data(args):
    """Tokenized SST-2 (`train`, `validation`), its `LabelSpace` and the tokenizer, read by `bermo train`'s code."""
    from transformers import AutoTokenizer

    from bermo_hf.training import DataArguments, LabelSpace, load_raw_datasets, tokenize_datasets

    data_dir = Path(args.data_dir)
    text_column, text_pair_column = TASK_COLUMNS[args.task]
    data_args = DataArguments(
        train_file=str(data_dir / "train.tsv"),
        validation_file=str(data_dir / "dev.tsv"),
        text_column=text_column,
        text_pair_column=text_pair_column,
        max_seq_length=args.max_length,
        max_train_samples=args.train_subset,
        max_eval_samples=args.dev_subset,
    )
    raw = load_raw_datasets(data_args)
    label_space = LabelSpace.from_datasets(raw, data_args.label_column)
    tokenizer = AutoTokenizer.from_pretrained(bench_common.resolve_checkpoint(args.model))
    return tokenize_datasets(raw, tokenizer, data_args, label_space), label_space, tokenizer


def majority_rate(dataset) -> float:
    labels = list(dataset["labels"])
    return max(labels.count(label) for label in set(labels)) / len(labels)


# Settings that change a run's result: with its model, seed and pruning settings they make its key.
TRAINING_SETTINGS = (
    "task", "model", "max_steps", "batch_size", "learning_rate", "train_subset", "dev_subset", "max_length",
)  # fmt: skip


def run_key(model_kind: str, seed: int, pruning: dict, args) -> str:
    """The identity of a run (machine, threads and device excluded): rerunning skips a recorded key."""
    settings = {name: getattr(args, name) for name in TRAINING_SETTINGS}
    return json.dumps({"model_kind": model_kind, "seed": seed, "pruning": pruning, **settings}, sort_keys=True)


def run_one(model_kind: str, seed: int, pruning: dict, args, data, tokenizer, label_space, device="cpu") -> dict:
    """Fine-tunes one model while pruning it; returns its dev accuracy and sparsity."""
    from transformers import DataCollatorWithPadding, TrainingArguments, set_seed

    from bermo_hf.pruning import PruningArguments, PruningBermoTrainer, sparsity_report
    from bermo_hf.training import build_compute_metrics

    set_seed(seed)
    model = bench_common.build_comparable(model_kind, args.model, num_labels=label_space.num_labels, seed=seed)
    pruning_args = PruningArguments(**pruning, **schedule(args.max_steps))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = TrainingArguments(
            output_dir=output_dir,
            max_steps=args.max_steps,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64,
            learning_rate=args.learning_rate,
            warmup_steps=max(1, args.max_steps // 10),
            weight_decay=0.01,
            seed=seed,
            train_sampling_strategy="group_by_length",
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=device == "cpu",
            bf16=device == "cuda",
        )
        trainer = PruningBermoTrainer(
            model=model,
            args=training_args,
            train_dataset=data["train"],
            eval_dataset=data["validation"],
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=build_compute_metrics(label_space),
            pruning_args=pruning_args,
        )
        trainer.train()
        metrics = trainer.evaluate()
    report = sparsity_report(model)
    return {
        "key": run_key(model_kind, seed, pruning, args),
        "device": device,
        "model": model_kind,
        "seed": seed,
        "pruning": {**pruning, **schedule(args.max_steps)},
        "dev_accuracy": metrics["eval_accuracy"],
        "encoder_sparsity": report["encoder"]["sparsity"],
        "encoder_remaining": report["encoder"]["total"] - report["encoder"]["zeros"],
        "encoder_total": report["encoder"]["total"],
        "parameters_remaining": report["parameters"]["remaining"],
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(runs: list[dict], diverged_at: float) -> dict:
    """Per model and target sparsity (magnitude) and per model and lambda (soft-movement)."""
    magnitude, soft = [], []
    for model in MODELS:
        targets = sorted({r["pruning"]["final_sparsity"] for r in runs if r["pruning"]["method"] == "magnitude"})
        for target in targets:
            group = [r for r in runs if r["model"] == model and r["pruning"].get("final_sparsity") == target]
            if not group:
                continue
            accuracies = [r["dev_accuracy"] for r in group]
            mean, std = _mean_std(accuracies)
            magnitude.append(
                {
                    "model": model,
                    "sparsity": target,
                    "measured_sparsity": statistics.mean(r["encoder_sparsity"] for r in group),
                    "accuracy_mean": mean,
                    "accuracy_std": std,
                    "seeds": [r["seed"] for r in group],
                    "accuracies": accuracies,
                    "runs": len(group),
                    "diverged": sum(acc <= diverged_at for acc in accuracies),
                }
            )
        for r in runs:
            if r["model"] == model and r["pruning"]["method"] == "soft-movement":
                soft.append(
                    {
                        "model": model,
                        "penalty": r["pruning"]["penalty"],
                        "seed": r["seed"],
                        "remaining_share": 1.0 - r["encoder_sparsity"],
                        "accuracy": r["dev_accuracy"],
                        "diverged": r["dev_accuracy"] <= diverged_at,
                    }
                )
    return {"magnitude": magnitude, "soft_movement": soft, "paired": paired_differences(runs)}


def paired_differences(runs: list[dict]) -> list[dict]:
    """Per magnitude target: BERMo's dev accuracy minus BERT's with the same seed, over the seeds both have."""
    paired = []
    magnitude = [r for r in runs if r["pruning"]["method"] == "magnitude"]
    for target in sorted({r["pruning"]["final_sparsity"] for r in magnitude}):
        by_model = {
            model: {
                r["seed"]: r["dev_accuracy"]
                for r in magnitude
                if r["model"] == model and r["pruning"]["final_sparsity"] == target
            }
            for model in MODELS
        }
        seeds = sorted(set(by_model["bert"]) & set(by_model["bermo"]))
        if not seeds:
            continue
        differences = [by_model["bermo"][seed] - by_model["bert"][seed] for seed in seeds]
        mean, std = _mean_std(differences)
        paired.append(
            {
                "sparsity": target,
                "seeds": seeds,
                "differences": differences,
                "mean": mean,
                "standard_error": std / len(differences) ** 0.5,
                "bermo_ahead": sum(difference > 0 for difference in differences),
            }
        )
    return paired


def summary_markdown(summary: dict, majority: float, diverged_at: float, seeds: list[int]) -> str:
    labels = bench_common.model_labels(summary.get("family"))
    lines = [
        f"Magnitude pruning, {len(seeds)} seeds ({', '.join(map(str, seeds))}); diverged: dev accuracy <= "
        f"{100 * diverged_at:.1f}% (majority class {100 * majority:.1f}% + 2 points).",
        "",
        "| model | target sparsity | measured encoder sparsity | dev accuracy (mean +- std) | diverged |",
        "|---|---|---|---|---|",
    ]
    for row in summary["magnitude"]:
        lines.append(
            f"| {labels[row['model']]} | {100 * row['sparsity']:.0f}% | {100 * row['measured_sparsity']:.2f}% | "
            f"{100 * row['accuracy_mean']:.2f} +- {100 * row['accuracy_std']:.2f} | "
            f"{row['diverged']} of {row['runs']} |"
        )
    if summary["paired"]:
        lines += [
            "",
            f"BERMo - {labels['bert']}, same seed (dev accuracy points):",
            "",
            "| target sparsity | per seed | mean +- standard error | BERMo ahead |",
            "|---|---|---|---|",
        ]
        for row in summary["paired"]:
            per_seed = ", ".join(f"{100 * difference:+.2f}" for difference in row["differences"])
            lines.append(
                f"| {100 * row['sparsity']:.0f}% | {per_seed} (seeds {', '.join(map(str, row['seeds']))}) | "
                f"{100 * row['mean']:+.2f} +- {100 * row['standard_error']:.2f} | "
                f"{row['bermo_ahead']} of {len(row['seeds'])} |"
            )
    if summary["soft_movement"]:
        lines += [
            "",
            "Soft-movement pruning (seed " + str(seeds[0]) + "):",
            "",
            "| model | penalty lambda | remaining encoder weights | dev accuracy |",
            "|---|---|---|---|",
        ]
        for row in summary["soft_movement"]:
            lines.append(
                f"| {labels[row['model']]} | {row['penalty']:g} | {100 * row['remaining_share']:.2f}% | "
                f"{100 * row['accuracy']:.2f}{' (diverged)' if row['diverged'] else ''} |"
            )
    return "\n".join(lines) + "\n"


def plot(summary: dict, diverged_at: float, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = bench_common.model_labels(summary.get("family"))
    soft_movement = bool(summary["soft_movement"])  # its panel only when it ran
    figure, axes = plt.subplots(1, 1 + soft_movement, figsize=(11 if soft_movement else 6.5, 4.2), squeeze=False)
    left, right = axes[0][0], axes[0][-1]
    for model, marker, shift in zip(MODELS, ("o", "s"), (-0.4, 0.4), strict=True):
        rows = [row for row in summary["magnitude"] if row["model"] == model]
        line = left.errorbar(
            [100 * r["sparsity"] + shift for r in rows],
            [100 * r["accuracy_mean"] for r in rows],
            yerr=[100 * r["accuracy_std"] for r in rows],
            marker=marker,
            capsize=4,
            label=labels[model],
        )
        for r in rows:  # every seed's run beside its model's mean, spread so that equal accuracies stay visible
            left.scatter(
                [
                    100 * r["sparsity"] + 2 * shift + 0.06 * (i - (len(r["accuracies"]) - 1) / 2)
                    for i in range(len(r["accuracies"]))
                ],
                [100 * accuracy for accuracy in r["accuracies"]],
                marker=marker,
                s=14,
                alpha=0.6,
                color=line.lines[0].get_color(),
            )
        rows = [row for row in summary["soft_movement"] if row["model"] == model]
        if not rows:
            continue
        right.plot(
            [100 * r["remaining_share"] for r in rows], [100 * r["accuracy"] for r in rows], marker, label=labels[model]
        )
        for r in rows:
            right.annotate(f"λ={r['penalty']:g}", (100 * r["remaining_share"], 100 * r["accuracy"]), fontsize=7)
    for axis in axes[0]:
        axis.axhline(100 * diverged_at, color="grey", linestyle="--", linewidth=1, label="divergence line")
        axis.set_ylabel("dev accuracy (%)")
        axis.legend()
        axis.grid(alpha=0.3)
    left.set_xlabel("encoder sparsity (%)")
    left.set_title("magnitude pruning: each seed, mean +- std")
    if soft_movement:
        right.set_xlabel("remaining encoder weights (%)")
        right.set_title("soft-movement pruning")
    figure.suptitle(title)
    figure.tight_layout()
    return bench_common.save_figure(figure, path)


def merged_runs(paths: list[str], runs: list[dict]) -> list[dict]:
    """The runs recorded in the results files `paths` that `runs` lacks (matched by key), in file order."""
    keys, added = {run.get("key") for run in runs}, []
    for path in paths:
        try:
            other = json.loads(Path(path).read_text())["runs"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise SystemExit(f"--merge_from: {path} is not a results file of bench/pruning.py ({error}).") from None
        for run in other:
            if run.get("key") not in keys:
                keys.add(run.get("key"))
                added.append(run)
    return added


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_common.quiet_transformers()
    bench_common.set_threads(args.threads)
    data, label_space, tokenizer = load_data(args)
    majority = majority_rate(data["validation"])
    diverged_at = majority + DIVERGENCE_MARGIN
    plans = [
        (model, seed, {"method": "magnitude", "final_sparsity": sparsity})
        for sparsity in args.sparsities
        for seed in args.seeds
        for model in args.models
    ]
    plans += [
        (
            model,
            args.seeds[0],
            {
                "method": "soft-movement",
                "penalty": penalty,
                "score_threshold": args.score_threshold,
                "scores_learning_rate": args.scores_learning_rate,
                "penalty_normalization": args.penalty_normalization,
            },
        )
        for penalty in args.penalties
        for model in args.models
    ]
    command = bench_common.command_line(argv, "pruning.py")
    settings = {key: value for key, value in vars(args).items() if key not in ("results_dir", "figures_dir")}
    results_dir, figures_dir = Path(args.results_dir), Path(args.figures_dir)
    json_path = results_dir / f"{args.name}.json"
    earlier = json.loads(json_path.read_text()) if json_path.is_file() else {}
    earlier["runs"] = earlier.get("runs", []) + merged_runs(args.merge_from, earlier.get("runs", []))
    recorded = {run["key"]: run for run in earlier["runs"] if "key" in run}
    device = recipe.resolve_device(args.device)
    payload = {
        "command": command,
        "settings": settings,
        "schedule": schedule(args.max_steps),
        "dev_sentences": len(data["validation"]),
        "train_sentences": len(data["train"]),
        "majority_rate": majority,
        "diverged_at_or_below": diverged_at,
        "total_wall_seconds": 0.0,
        "machine": bench_common.machine_info(),
        "runs": list(earlier.get("runs", [])),
    }
    runs = []
    started = time.perf_counter()
    for index, (model, seed, pruning) in enumerate(plans, 1):
        setting = pruning.get("final_sparsity", pruning.get("penalty"))
        key = run_key(model, seed, pruning, args)
        if key in recorded:
            runs.append(recorded[key])
            print(f"[{index}/{len(plans)}] {model} {pruning['method']} {setting} seed {seed}: recorded", flush=True)
            continue
        run = run_one(model, seed, pruning, args, data, tokenizer, label_space, device)
        runs.append(run)
        payload["runs"].append(run)
        payload["total_wall_seconds"] = round(time.perf_counter() - started, 1)
        bench_common.write_json(json_path, payload)  # each run is kept as soon as it finishes
        print(
            f"[{index}/{len(plans)}] {model} {pruning['method']} {setting} seed {seed}: "
            f"dev acc {100 * run['dev_accuracy']:.2f}, sparsity {100 * run['encoder_sparsity']:.2f}%, "
            f"{run['wall_seconds']:.0f} s",
            flush=True,
        )
    wall = time.perf_counter() - started

    summary = summarize(runs, diverged_at)
    summary["family"] = bench_common.family_name(args.model)
    table = summary_markdown(summary, majority, diverged_at, args.seeds)
    run_seconds = sum(run["wall_seconds"] for run in runs)
    run_minutes = run_seconds / 60
    payload["total_wall_seconds"] = round(wall, 1)
    payload["sum_of_run_wall_seconds"] = round(run_seconds, 1)
    payload["summary"] = summary
    json_path = bench_common.write_json(json_path, payload)
    md_path = results_dir / f"{args.name}.md"
    timing = f"{wall / 60:.1f} min this time; its {len(runs)} runs: {run_minutes:.1f} min"
    md_path.write_text(f"`{command}` ({timing})\n\n{table}")
    task = {"sst2": "SST-2", "rte": "RTE"}[args.task]
    checkpoint = bench_common.checkpoint_label(args.model)
    title = f"{task}, {checkpoint}, {args.max_steps} steps per run, {len(data['validation'])} dev examples"
    figure_path = plot(summary, diverged_at, figures_dir / f"{args.name}.png", title)
    print(table)
    print(f"total {wall / 60:.1f} min (its runs: {run_minutes:.1f} min); wrote {json_path}, {md_path}, {figure_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
