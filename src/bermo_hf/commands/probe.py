"""`bermo probe`: SentEval probing of BERT and BERMo from one checkpoint, fine-tuned (the paper) or frozen per depth.

Writes `probe_results.md`, `probe_results.json` and `probe_heatmap.png` into `--output_dir` and prints the markdown
table. A usage error (missing or malformed file, unknown task, unloadable checkpoint) is one line on stderr and exit
status 1, as for every `bermo` command.
"""

import argparse
import sys

from transformers import HfArgumentParser

from ..probing import ProbingArguments, ProbingInterrupted, format_markdown, run_probing
from ._common import reports_usage_errors

EPILOG = """examples:
  bermo probe --model_name_or_path bert-base-uncased --data_dir SentEval/data/probing --output_dir probe-ft
  bermo probe --mode frozen --pooling mean --model_name_or_path ./bert --data_dir ./probing --output_dir probe-frozen
  bermo probe --model_name_or_path bert-base-uncased --data_dir SentEval/data/probing --output_dir probe-ft --resume
"""


def build_parser() -> HfArgumentParser:
    """The flags of `bermo probe`: one per field of `ProbingArguments`."""
    return HfArgumentParser(
        ProbingArguments,
        prog="bermo probe",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )


@reports_usage_errors("probe")
def main(argv: list[str]) -> int:
    """Runs `bermo probe ARGS`; returns the exit status."""
    (args,) = build_parser().parse_args_into_dataclasses(args=argv)
    try:
        report = run_probing(args)
    except ProbingInterrupted as interruption:
        if interruption.report:
            print(
                f"bermo probe: interrupted: {interruption.report} holds the {len(interruption.finished)} task(s) "
                f"finished; the same command with --resume runs the other(s): {', '.join(interruption.pending)}.",
                file=sys.stderr,
            )
        elif args.output_dir:
            print("bermo probe: interrupted before the first task finished; nothing was written.", file=sys.stderr)
        raise
    print(format_markdown(report))
    if args.output_dir:
        print(f"results written to {args.output_dir}", file=sys.stderr)
    return 0


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the epilog's line breaks and shows each flag's default."""
