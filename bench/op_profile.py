"""Which operations BERMo adds to BERT, and how much CPU time they take: a contention-proof view of the overhead.

Step times on a busy shared machine swing by more than the few percent that BERMo could cost. This script instead
profiles one train step (forward + backward) and one inference pass of each model (`torch.profiler`, input shapes
recorded) and compares the two op by op: every (op, input shapes) call that BERMo makes more often than BERT is extra
work, costed at BERMo's own measured self CPU time per call of that op and shape. The result is the time BERMo spends
in work BERT does not do, and its share of BERMo's whole step; it does not depend on how fast the shared ops ran.

    python bench/op_profile.py --threads 1
"""

import argparse
import sys
from pathlib import Path

import bench_common
import overhead

MODELS = ("bert", "bermo")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default=bench_common.MINILM, help="minilm, bert-base-random or a BERT folder")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--output", help="results JSON (default bench/results/op_profile_<size>.json)")
    return parser.parse_args(argv)


def profile_step(model, step, batch: dict) -> dict:
    """`(op name, input shapes) -> {"count", "self_cpu_ms"}` of one call of `step(model, batch, "cpu")`, after one
    unprofiled warm-up call."""
    from torch.profiler import ProfilerActivity, profile

    step(model, batch, "cpu")
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiler:
        step(model, batch, "cpu")
    return {
        f"{event.key} {event.input_shapes}": {"count": event.count, "self_cpu_ms": event.self_cpu_time_total / 1e3}
        for event in profiler.key_averages(group_by_input_shape=True)
    }


def extra_work(bert_ops: dict, bermo_ops: dict) -> dict:
    """The calls BERMo makes beyond BERT's, per (op, shapes), costed at BERMo's mean self time per call."""
    extra = {}
    for key, bermo in bermo_ops.items():
        calls = bermo["count"] - bert_ops.get(key, {"count": 0})["count"]
        if calls > 0:
            extra[key] = {"calls": calls, "self_cpu_ms": calls * bermo["self_cpu_ms"] / bermo["count"]}
    return extra


def compare(models: dict, step, batch: dict) -> dict:
    """Profiles `step` for both models; BERMo's extra work, its time and its share of BERMo's step."""
    ops = {name: profile_step(model, step, batch) for name, model in models.items()}
    extra = extra_work(ops["bert"], ops["bermo"])
    totals = {name: sum(op["self_cpu_ms"] for op in ops[name].values()) for name in MODELS}
    extra_ms = sum(op["self_cpu_ms"] for op in extra.values())
    return {
        "total_self_cpu_ms": totals,
        "op_calls": {name: sum(op["count"] for op in ops[name].values()) for name in MODELS},
        "extra_self_cpu_ms": extra_ms,
        "extra_share_of_bermo_step": extra_ms / totals["bermo"],
        "extra_ops": dict(sorted(extra.items(), key=lambda item: -item[1]["self_cpu_ms"])),
    }


def report_markdown(payload: dict) -> str:
    lines = [
        f"**{payload['size']}**, batch {payload['batch_size']} x seq {payload['seq_len']}, "
        f"torch threads {payload['machine']['torch_threads']}",
        "",
        "| step | op calls BERT / BERMo | BERMo's extra ops (self CPU ms) | BERMo step (self CPU ms) | extra share |",
        "|---|---|---|---|---|",
    ]
    for label, key in (("train (fwd+bwd)", "train_step"), ("inference", "inference")):
        entry = payload[key]
        lines.append(
            f"| {label} | {entry['op_calls']['bert']} / {entry['op_calls']['bermo']} "
            f"| {entry['extra_self_cpu_ms']:.2f} | {entry['total_self_cpu_ms']['bermo']:.0f} "
            f"| {entry['extra_share_of_bermo_step']:.3%} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_common.quiet_transformers()
    bench_common.set_threads(args.threads)
    bert, bermo = bench_common.build_pair(args.size)
    models = {"bert": bert, "bermo": bermo}
    batch = overhead.make_batch(bert.config.vocab_size, args.batch_size, args.seq_len, "cpu")
    payload = {
        "benchmark": "op_profile",
        "command": bench_common.command_line(argv, "op_profile.py"),
        "size": args.size,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "machine": bench_common.machine_info(),
    }
    for model in models.values():
        model.train()
    payload["train_step"] = compare(models, overhead.train_step, batch)
    for model in models.values():
        model.eval()
    payload["inference"] = compare(models, overhead.inference_step, batch)

    name = Path(args.size).name if args.size not in (bench_common.MINILM, bench_common.BERT_BASE_RANDOM) else args.size
    output = Path(args.output or bench_common.RESULTS_DIR / f"op_profile_{name}.json")
    bench_common.write_report(output, payload, report_markdown(payload))
    print(f"wrote {output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
