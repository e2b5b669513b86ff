"""Convergence and accuracy of BERMo against plain BERT on GLUE SST-2.

Fine-tunes `BertForSequenceClassification` and `BermoForSequenceClassification` from the same pretrained checkpoint
with the standard `transformers.Trainer`: identical hyper-parameters, identical starting weights (BERT's freshly
initialized classifier and pooler are copied into BERMo, so only BERMo's layer mix differs), and per seed an identical
data order and dropout stream. Dev accuracy is evaluated every `--eval_every` steps (and at step 0).

Writes a results JSON (every curve point, final and best accuracies, wall times, machine and versions), a PNG (dev
accuracy against step, each seed's curve and the mean per model; each seed's steps to the target), and a Markdown
summary: best dev accuracy mean +- std,
steps to first reach the target accuracy and the ratio baseline/BERMo (the figure comparable to the paper's 1.67x on
MNLI), BERMo's final layer weights averaged over seeds. Each run is recorded as it ends; a rerun under the same
`--name` takes the runs already recorded there and trains only the others (a file of other settings is refused).

    python bench/convergence.py --quick      # one seed, 120 steps, 200 dev sentences
    python bench/convergence.py              # 3 seeds, 600 steps, full dev set
    python bench/convergence.py --mix_learning_rate 1e-2 --name convergence_sst2_mix_lr_1e-2 \
        --reuse bench/results/convergence_sst2.json   # BERMo again with a faster mix; BERT's runs reused
    python bench/convergence.py --name convergence_sst2 --report_only   # tables and figure of the runs recorded
"""

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import bench_common
import recipe

MODELS = ("bert", "bermo")
LABELS = {"bert": "BERT", "bermo": "BERMo"}
DEFAULT_DATA_DIR = bench_common.REPO_ROOT.parent / "shared" / "data" / "sst2"

# name -> value of every setting that `--quick` changes, and the defaults of a full run.
FULL = {"seeds": [0, 1, 2], "max_steps": 600, "eval_every": 50, "dev_subset": None, "name": "convergence_sst2"}
QUICK = {"seeds": [0], "max_steps": 120, "eval_every": 20, "dev_subset": 200, "name": "convergence_sst2_quick"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--model",
        default=bench_common.MINILM,
        help="checkpoint to start from: a folder of any supported family, minilm or mpnet-base (default: minilm)",
    )
    parser.add_argument(
        "--data_dir",
        default=str(DEFAULT_DATA_DIR),
        help="folder with SST-2 train.tsv and dev.tsv (columns sentence, label; default ../shared/data/sst2)",
    )
    parser.add_argument("--quick", action="store_true", help="one seed, few steps, a dev subset: a smoke-size run")
    parser.add_argument("--seeds", type=int, nargs="+", help=f"seeds (default {FULL['seeds']}, quick {QUICK['seeds']})")
    parser.add_argument("--max_steps", type=int, help=f"training steps per run (default {FULL['max_steps']})")
    parser.add_argument("--eval_every", type=int, help=f"steps between dev evaluations (default {FULL['eval_every']})")
    parser.add_argument("--dev_subset", type=int, help="evaluate on this many dev sentences (default: all)")
    parser.add_argument("--train_subset", type=int, help="train on this many sentences (default: all)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument(
        "--mix_learning_rate",
        type=float,
        help="BERMo only: learning rate of the layer mix (default: --learning_rate), as `bermo train` takes it",
    )
    parser.add_argument(
        "--layer_mix_init",
        choices=("uniform", "last"),
        help="BERMo only: start of the mix (default: the configuration's, uniform, the paper's)",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA with bf16 when a GPU is present"
    )
    parser.add_argument("--warmup_ratio", type=float, default=0.06)
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument("--max_length", type=int, default=128, help="truncate sentences to this many tokens")
    parser.add_argument(
        "--no_group_by_length",
        action="store_true",
        help="draw batches uniformly instead of grouping sentences of similar length (less padding, same for both)",
    )
    parser.add_argument(
        "--target",
        type=float,
        default=0.99,
        help="target accuracy as a fraction of the baseline's mean best dev accuracy (default 0.99)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--reuse",
        nargs="+",
        default=[],
        metavar="JSON",
        help="results files of earlier runs: a (model, seed) run found there with the same training settings is\n"
        "taken from it instead of being trained again (to finish a long benchmark in parts)",
    )
    parser.add_argument(
        "--report_only",
        action="store_true",
        help="train nothing: redraw the report and figure of the runs recorded under --name (a grid stopped early)",
    )
    parser.add_argument("--name", help="base name of the output files (default convergence_sst2[_quick])")
    parser.add_argument("--results_dir", default=str(bench_common.RESULTS_DIR), help="where the JSON and .md go")
    parser.add_argument("--figures_dir", default=str(bench_common.FIGURES_DIR), help="where the PNG goes")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.max_steps < 1 or args.eval_every < 1:
        parser.error("--max_steps and --eval_every must be positive")
    if args.learning_rate <= 0 or (args.mix_learning_rate is not None and args.mix_learning_rate <= 0):
        parser.error("--learning_rate and --mix_learning_rate must be positive")
    return args


def load_sst2(data_dir: str | Path, tokenizer, max_length: int, dev_subset: int | None, train_subset: int | None):
    """SST-2 `train.tsv` and `dev.tsv` read with `datasets` (tab-separated, no quoting), tokenized without padding."""
    from datasets import load_dataset

    data_dir = Path(data_dir)
    files = {"train": str(data_dir / "train.tsv"), "dev": str(data_dir / "dev.tsv")}
    for path in files.values():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} is missing: pass --data_dir with SST-2's train.tsv and dev.tsv")
    raw = load_dataset("csv", data_files=files, delimiter="\t", quoting=3)
    for split in raw.values():
        if not {"sentence", "label"} <= set(split.column_names):
            raise ValueError(f"expected columns 'sentence' and 'label' in {data_dir}, found {split.column_names}")
    if train_subset is not None:
        raw["train"] = raw["train"].shuffle(seed=0).select(range(min(train_subset, len(raw["train"]))))
    if dev_subset is not None:
        raw["dev"] = raw["dev"].shuffle(seed=0).select(range(min(dev_subset, len(raw["dev"]))))

    def tokenize(batch):
        return tokenizer(batch["sentence"], truncation=True, max_length=max_length)

    drop = [name for name in raw["train"].column_names if name != "label"]
    tokenized = raw.map(tokenize, batched=True, remove_columns=drop)
    # Evaluation order does not change accuracy: sorting dev by length keeps padding, and evaluation time, low.
    lengths = [len(ids) for ids in tokenized["dev"]["input_ids"]]
    tokenized["dev"] = tokenized["dev"].select(sorted(range(len(lengths)), key=lengths.__getitem__))
    return tokenized


def accuracy(eval_prediction) -> dict:
    """`compute_metrics` for the Trainer: share of dev sentences whose arg-max logit is the label."""
    logits, labels = eval_prediction
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def train_one(model_kind: str, seed: int, args, datasets, tokenizer) -> dict:
    """Fine-tunes one model with one seed; returns its curve, accuracies, wall time and (BERMo) layer weights."""
    import torch

    mix = {"layer_mix_init": args.layer_mix_init} if model_kind == "bermo" and args.layer_mix_init else {}
    model = bench_common.build_comparable(model_kind, args.model, num_labels=2, seed=seed, **mix)
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    trained = recipe.train_with_curve(
        model,
        tag=f"{LABELS[model_kind]} seed {seed}",
        seed=seed,
        device=device,
        train_dataset=datasets["train"],
        eval_dataset=datasets["dev"],
        tokenizer=tokenizer,
        compute_metrics=accuracy,
        mix_learning_rate=args.mix_learning_rate if model_kind == "bermo" else None,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=math.ceil(args.warmup_ratio * args.max_steps),
        weight_decay=args.weight_decay,
        eval_every=args.eval_every,
        group_by_length=not args.no_group_by_length,
    )
    accuracies = [point["dev_accuracy"] for point in trained["curve"]]
    run = {
        "model": model_kind,
        "seed": seed,
        "curve": trained["curve"],
        "final_accuracy": accuracies[-1],
        "best_accuracy": max(accuracies),
        "wall_time_s": trained["wall_time_s"],
    }
    if device == "cuda":
        run["device"] = torch.cuda.get_device_name(0)
    if model_kind == "bermo":
        run["mix_learning_rate"] = args.mix_learning_rate
        if args.layer_mix_init:
            run["layer_mix_init"] = args.layer_mix_init
        run["layer_weights"] = model.layer_weights()
    return run


# Settings that must match for an earlier run to be reused; seeds, threads and file names may differ.
TRAINING_SETTINGS = (
    "max_steps",
    "eval_every",
    "dev_subset",
    "train_subset",
    "batch_size",
    "learning_rate",
    "warmup_ratio",
    "weight_decay",
    "max_length",
)
# What else a recorded run depends on: the checkpoint and the data it saw.
DATA_KEYS = ("checkpoint", "train_sampling", "num_train", "num_dev")


def reusable_runs(paths: list[str], payload: dict) -> dict:
    """`(model, seed) -> run` from earlier results files whose checkpoint, data and training settings match."""
    found = {}
    for path in paths:
        earlier = json.loads(Path(path).read_text())
        same = all(earlier["settings"][key] == payload["settings"][key] for key in TRAINING_SETTINGS) and all(
            earlier[key] == payload[key] for key in DATA_KEYS
        )
        if not same:
            print(f"not reusing {path}: its settings differ from this run's", flush=True)
            continue
        for run in earlier["runs"]:
            if run["model"] == "bermo" and (
                run.get("mix_learning_rate") != payload["settings"]["mix_learning_rate"]
                or run.get("layer_mix_init") != payload["settings"]["layer_mix_init"]
            ):
                continue  # BERT runs do not depend on BERMo's mix settings; BERMo runs do
            found.setdefault((run["model"], run["seed"]), {**run, "reused_from": str(path)})
    return found


def recorded_runs(results_path: Path, payload: dict) -> dict:
    """`(model, seed) -> run` that an earlier sitting of this benchmark recorded in `results_path`, so that a rerun goes
    on where it stopped. A file holding runs of other settings is refused (`SystemExit`), never overwritten."""
    if not results_path.is_file():
        return {}
    earlier = json.loads(results_path.read_text())
    differing = [
        key
        for key in payload["settings"]
        if key not in ("seeds", "threads") and earlier["settings"].get(key) != payload["settings"][key]
    ]
    differing += [key for key in DATA_KEYS if earlier[key] != payload[key]]
    if differing:
        raise SystemExit(
            f"{results_path} holds runs with other settings ({', '.join(differing)}); give this run another --name."
        )
    return {(run["model"], run["seed"]): run for run in earlier["runs"]}


def first_step_reaching(curve: list[dict], target: float) -> int | None:
    """The first evaluated step whose dev accuracy is at least `target`; `None` when it never is."""
    return next((point["step"] for point in curve if point["dev_accuracy"] >= target), None)


def mean_curve(runs: list[dict]) -> list[dict]:
    """Per evaluated step: mean, min and max dev accuracy over the runs (seeds) of one model."""
    by_step = {}
    for run in runs:
        for point in run["curve"]:
            by_step.setdefault(point["step"], []).append(point["dev_accuracy"])
    return [
        {"step": step, "dev_accuracy": statistics.fmean(values), "min": min(values), "max": max(values)}
        for step, values in sorted(by_step.items())
    ]


def _mean_std(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def summarize(runs: list[dict], target_fraction: float) -> dict:
    """Accuracies, steps to the target accuracy and the speed-up baseline/BERMo, BERMo's mean layer weights."""
    by_model = {kind: [run for run in runs if run["model"] == kind] for kind in MODELS}
    target = target_fraction * statistics.fmean(run["best_accuracy"] for run in by_model["bert"])
    summary = {"target_fraction": target_fraction, "target_accuracy": target, "models": {}}
    for kind, kind_runs in by_model.items():
        per_seed = {run["seed"]: first_step_reaching(run["curve"], target) for run in kind_runs}
        reached = [steps for steps in per_seed.values() if steps is not None]
        curve = mean_curve(kind_runs)
        summary["models"][kind] = {
            "best_accuracy": _mean_std([run["best_accuracy"] for run in kind_runs]),
            "final_accuracy": _mean_std([run["final_accuracy"] for run in kind_runs]),
            "wall_time_s": _mean_std([run["wall_time_s"] for run in kind_runs]),
            "steps_to_target_per_seed": per_seed,
            "steps_to_target_mean_over_seeds": statistics.fmean(reached) if len(reached) == len(per_seed) else None,
            "steps_to_target_of_mean_curve": first_step_reaching(curve, target),
            "mean_curve": curve,
        }
    bert, bermo = summary["models"]["bert"], summary["models"]["bermo"]
    summary["speedup_mean_curve"] = _ratio(
        bert["steps_to_target_of_mean_curve"], bermo["steps_to_target_of_mean_curve"]
    )
    summary["speedup_mean_over_seeds"] = _ratio(
        bert["steps_to_target_mean_over_seeds"], bermo["steps_to_target_mean_over_seeds"]
    )
    weights = [run["layer_weights"] for run in by_model["bermo"]]
    summary["bermo_layer_weights_mean"] = {
        "weights": [statistics.fmean(column) for column in zip(*(w["weights"] for w in weights), strict=True)],
        "gamma": statistics.fmean(w["gamma"] for w in weights),
    }
    return summary


def _fmt_steps(steps) -> str:
    return "not reached" if steps is None else f"{steps:g}"


def _fmt_ratio(ratio) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def summary_markdown(summary: dict, seeds: list[int]) -> str:
    """The summary as Markdown tables, as pasted into BENCHMARKS.md; the plain model is named by its family."""
    target, labels = summary["target_accuracy"], bench_common.model_labels(summary.get("family"))
    lines = [
        f"Target accuracy: {target:.4f} ({summary['target_fraction']:.0%} of {labels['bert']}'s mean best dev "
        f"accuracy); seeds {', '.join(map(str, seeds))}.",
        "",
        "| model | best dev acc (mean +- std) | final dev acc (mean +- std) | steps to target, per seed "
        "| steps to target, mean curve | wall time per run (s) |",
        "|---|---|---|---|---|---|",
    ]
    for kind in MODELS:
        model = summary["models"][kind]
        per_seed = ", ".join(_fmt_steps(steps) for steps in model["steps_to_target_per_seed"].values())
        lines.append(
            f"| {labels[kind]} | {model['best_accuracy']['mean']:.4f} +- {model['best_accuracy']['std']:.4f} "
            f"| {model['final_accuracy']['mean']:.4f} +- {model['final_accuracy']['std']:.4f} | {per_seed} "
            f"| {_fmt_steps(model['steps_to_target_of_mean_curve'])} | {model['wall_time_s']['mean']:.0f} |"
        )
    lines += [
        "",
        f"Steps-to-target ratio {labels['bert']}/BERMo (paper: 1.67x MNLI, 1.15x QQP): mean curve "
        f"{_fmt_ratio(summary['speedup_mean_curve'])}, "
        f"mean over seeds {_fmt_ratio(summary['speedup_mean_over_seeds'])}.",
        "",
    ]
    mix = summary["bermo_layer_weights_mean"]
    depths = ["emb"] + [f"L{i}" for i in range(1, len(mix["weights"]))]
    lines += [
        f"BERMo layer weights after training, mean over seeds (gamma {mix['gamma']:.3f}):",
        "",
        "| " + " | ".join(depths) + " |",
        "|" + "---|" * len(depths),
        "| " + " | ".join(f"{w:.3f}" for w in mix["weights"]) + " |",
        "",
    ]
    return "\n".join(lines)


def plot(summary: dict, runs: list[dict], path: str | Path, title: str) -> Path:
    """Two panels. Left: dev accuracy against step, each seed's curve (thin) and the mean over seeds (thick) per
    model, the target as a dashed line. Right, the seed-level view of the speed: each seed's steps to the target per
    model (a strip plot, seeds labelled), runs that never reached it drawn above the last step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (curves, strip) = plt.subplots(1, 2, figsize=(10, 4.5), width_ratios=(2.2, 1))
    labels = bench_common.model_labels(summary.get("family"))
    colors = dict(zip(MODELS, ("tab:blue", "tab:orange"), strict=True))
    last_step = max(point["step"] for run in runs for point in run["curve"])
    not_reached = last_step * 1.1
    for position, kind in enumerate(MODELS):
        for run in (run for run in runs if run["model"] == kind):
            steps = [point["step"] for point in run["curve"]]
            curves.plot(steps, [point["dev_accuracy"] for point in run["curve"]], color=colors[kind], lw=0.8, alpha=0.4)
        curve = summary["models"][kind]["mean_curve"]
        curves.plot(
            [point["step"] for point in curve],
            [point["dev_accuracy"] for point in curve],
            color=colors[kind],
            lw=2,
            marker="o",
            ms=3,
            label=f"{labels[kind]} (mean; thin: each seed)",
        )
        per_seed = summary["models"][kind]["steps_to_target_per_seed"]
        for offset, (seed, steps) in enumerate(sorted(per_seed.items(), key=lambda item: int(item[0]))):
            x = position + 0.12 * (offset - (len(per_seed) - 1) / 2)
            y = not_reached if steps is None else steps
            strip.scatter(x, y, color=colors[kind], marker="x" if steps is None else "o", s=40, zorder=3)
            strip.annotate(str(seed), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    curves.axhline(summary["target_accuracy"], color="grey", linestyle="--", linewidth=1, label="target")
    lowest = min(point["dev_accuracy"] for run in runs for point in run["curve"][1:])
    curves.set_ylim(max(0.0, min(lowest, summary["target_accuracy"]) - 0.02), None)
    curves.set_xlabel("training step")
    curves.set_ylabel("dev accuracy")
    curves.set_title(title, fontsize=10)
    curves.grid(alpha=0.3)
    curves.legend(loc="lower right", fontsize=8)
    strip.axhline(not_reached, color="grey", linestyle=":", linewidth=1)
    strip.text(-0.45, not_reached, "not reached (x)", va="bottom", fontsize=8, color="grey")
    strip.set_xticks(range(len(MODELS)), [labels[kind] for kind in MODELS])
    strip.set_xlim(-0.5, len(MODELS) - 0.5)
    strip.set_ylim(0, not_reached * 1.08)
    strip.set_ylabel(f"steps to {summary['target_fraction']:.0%} of {labels['bert']}'s best")
    strip.set_title("each seed (numbered)", fontsize=10)
    strip.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return bench_common.save_figure(figure, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_common.quiet_transformers()
    bench_common.set_threads(args.threads)
    from transformers import AutoTokenizer

    results_path = Path(args.results_dir) / f"{args.name}.json"
    if args.report_only:
        if not results_path.is_file():
            raise SystemExit(f"--report_only: no runs are recorded in {results_path}.")
        payload = json.loads(results_path.read_text())
        if {run["model"] for run in payload["runs"]} != set(MODELS):
            raise SystemExit(f"--report_only: {results_path} needs at least one run of each of {', '.join(MODELS)}.")
        write_report(payload, args, results_path)
        return 0
    checkpoint = bench_common.resolve_checkpoint(args.model)
    if checkpoint is None:
        raise SystemExit("convergence needs a pretrained checkpoint folder, not bert-base-random")
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    datasets = load_sst2(args.data_dir, tokenizer, args.max_length, args.dev_subset, args.train_subset)
    command = bench_common.command_line(argv, "convergence.py")
    print(
        f"SST-2: {len(datasets['train'])} train, {len(datasets['dev'])} dev sentences; {args.max_steps} steps per run, "
        f"dev evaluated every {args.eval_every}; seeds {args.seeds}; writing {results_path}",
        flush=True,
    )
    payload = {
        "benchmark": "convergence",
        "command": command,
        "task": "sst2",
        "checkpoint": args.model,
        "settings": {
            key: getattr(args, key)
            for key in ("seeds", *TRAINING_SETTINGS, "mix_learning_rate", "layer_mix_init", "target", "threads")
        },
        "train_sampling": "random" if args.no_group_by_length else "group_by_length",
        "num_train": len(datasets["train"]),
        "num_dev": len(datasets["dev"]),
        "machine": bench_common.machine_info(),
        "runs": [],
    }
    recorded = recorded_runs(results_path, payload)
    reused = reusable_runs(args.reuse, payload)
    start = time.perf_counter()
    for seed in args.seeds:
        for kind in MODELS:
            if (kind, seed) in recorded:
                print(f"[{LABELS[kind]} seed {seed}] recorded in {results_path}", flush=True)
                payload["runs"].append(recorded[kind, seed])
                continue
            if (kind, seed) in reused:
                print(f"[{LABELS[kind]} seed {seed}] reused from {reused[kind, seed]['reused_from']}", flush=True)
                payload["runs"].append(reused[kind, seed])
                continue
            payload["runs"].append(train_one(kind, seed, args, datasets, tokenizer))
            payload["total_wall_time_s"] = time.perf_counter() - start
            bench_common.write_json(results_path, payload)  # partial results survive an interrupted run

    payload["total_wall_time_s"] = time.perf_counter() - start
    write_report(payload, args, results_path)
    return 0


def write_report(payload: dict, args: argparse.Namespace, results_path: Path) -> None:
    """Summarizes the runs of `payload` into its results JSON, the Markdown tables and the figure."""
    seeds = sorted({run["seed"] for run in payload["runs"]})
    target = payload["settings"].get("target", args.target)
    mix_learning_rate = payload["settings"]["mix_learning_rate"]
    payload["sum_of_run_wall_times_s"] = sum(run["wall_time_s"] for run in payload["runs"])
    payload["summary"] = summarize(payload["runs"], target)
    payload["summary"]["family"] = bench_common.family_name(payload["checkpoint"])
    bench_common.write_report(results_path, payload, summary_markdown(payload["summary"], seeds))
    checkpoint = payload["checkpoint"]
    model_name = bench_common.checkpoint_label(checkpoint)
    figure = plot(
        payload["summary"],
        payload["runs"],
        Path(args.figures_dir) / f"{args.name}.png",
        f"SST-2 dev accuracy, {model_name}, {len(seeds)} seed(s)"
        + (f"; BERMo mix lr {mix_learning_rate:g}" if mix_learning_rate is not None else ""),
    )
    print(f"wrote {results_path}, {figure} and {args.name}.md", flush=True)


if __name__ == "__main__":
    sys.exit(main())
