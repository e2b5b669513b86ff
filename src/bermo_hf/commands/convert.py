"""`bermo convert SRC OUT`: a BERT checkpoint (folder or Hub id) becomes a Hub-ready BERMo folder.

OUT holds the configuration (with `auto_map`), both code files, the safetensors weights (BERT's, a fresh mix and
head), the tokenizer and the model card: it loads anywhere with `trust_remote_code=True`. A non-empty OUT is refused
unless `--overwrite_output_dir`, which replaces only the files written (a model card already there is merged into).
"""

import argparse
from pathlib import Path

from ..checkpoints import load_checkpoint_config
from ..errors import BermoUsageError
from ..hub import is_hub_id, set_model_card_info
from ..modeling_bermo import (
    BermoForMultipleChoice,
    BermoForQuestionAnswering,
    BermoForSequenceClassification,
    BermoForTokenClassification,
)
from ..output_folders import check_output_dir, files_written_into
from ._common import reports_usage_errors

TASK_CLASSES = {
    "sequence-classification": BermoForSequenceClassification,
    "token-classification": BermoForTokenClassification,
    "question-answering": BermoForQuestionAnswering,
    "multiple-choice": BermoForMultipleChoice,
}


def convert_checkpoint(
    source: str,
    output_dir: str | Path,
    task: str = "sequence-classification",
    num_labels: int | None = None,
    labels: list[str] | None = None,
    base_model: str | None = None,
    overwrite_output_dir: bool = False,
) -> Path:
    """Converts the BERT (or BERMo) checkpoint `source` into a BERMo model for `task` saved Hub-ready in
    `output_dir`. `labels` names the classes (and sets their number); `base_model` is the Hub id the card names as the
    origin (defaults to `source` when that is a Hub id). Returns `output_dir`.

    A non-empty `output_dir` is refused (`BermoUsageError`) unless `overwrite_output_dir`; then only the files written
    are replaced, each complete or absent, and nothing else is removed. A new `output_dir` is complete or absent."""
    from transformers import AutoTokenizer

    if task not in TASK_CLASSES:
        raise BermoUsageError(f"unknown task {task!r}; choose one of: {', '.join(TASK_CLASSES)}.")
    output_dir = Path(output_dir)
    check_output_dir(output_dir, overwrite=overwrite_output_dir)
    config = load_checkpoint_config(source)
    if config.model_type not in ("bert", "bermo"):
        raise BermoUsageError(f"{source} is a {config.model_type!r} checkpoint; bermo convert takes BERT checkpoints.")
    head_settings = {}
    if labels:
        if num_labels is not None and num_labels != len(labels):
            raise BermoUsageError(f"--num_labels {num_labels} disagrees with the {len(labels)} names of --labels.")
        head_settings = {"id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)}}
    elif num_labels is not None:
        head_settings = {"num_labels": num_labels}
    # A head of the source for other labels (or another task) is re-initialized.
    model = TASK_CLASSES[task].from_pretrained(source, ignore_mismatched_sizes=True, **head_settings)
    tokenizer = AutoTokenizer.from_pretrained(source)
    set_model_card_info(model, base_model=base_model or (source if is_hub_id(source) else None))
    with files_written_into(output_dir, overwrite=overwrite_output_dir) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return output_dir


@reports_usage_errors("convert")
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bermo convert",
        description="Turn a BERT checkpoint (local folder or Hub id) into a Hub-ready BERMo folder: config with "
        "auto_map, configuration_bermo.py, modeling_bermo.py, safetensors, tokenizer and model card.",
    )
    parser.add_argument("source", metavar="SRC", help="BERT checkpoint: a local folder or a Hub id.")
    parser.add_argument(
        "output_dir", metavar="OUT", help="folder to write; an existing non-empty one needs --overwrite_output_dir."
    )
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="write into an existing non-empty OUT: only the files written are replaced, nothing else is removed.",
    )
    parser.add_argument("--task", choices=list(TASK_CLASSES), default="sequence-classification")
    parser.add_argument("--num_labels", type=int, help="number of classes of the head (default: the checkpoint's).")
    parser.add_argument("--labels", help="comma-separated class names, e.g. neg,pos (sets --num_labels).")
    args = parser.parse_args(argv)

    labels = [label.strip() for label in args.labels.split(",")] if args.labels else None
    output_dir = convert_checkpoint(
        args.source, args.output_dir, args.task, args.num_labels, labels, overwrite_output_dir=args.overwrite_output_dir
    )
    print(f"BERMo {args.task} model written to {output_dir} (load it with trust_remote_code=True)")
    return 0
