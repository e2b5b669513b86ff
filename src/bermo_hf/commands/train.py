"""`bermo train`: fine-tune BERMo (or, with `--baseline`, plain BERT) on a labelled file with the standard `Trainer`.

Every `TrainingArguments` flag is accepted. Defaults that differ from `TrainingArguments`': with validation data,
evaluation and saving each epoch and the best model (by eval loss, or `--metric_for_best_model`) kept at the end;
`--save_total_limit 1`. OUTPUT_DIR receives the model (Hub-ready), `metrics.json` and the checkpoints, and is written
all-or-nothing; `--push_to_hub` publishes it with the BERMo model card.
"""

import logging
import sys
from pathlib import Path

from ..hub import LayerWeights
from ..training import DataArguments, ModelArguments, build_trainer, train_and_evaluate
from ._common import BermoUsageError, output_dir_written_atomically, partial_dir_for, reports_usage_errors
from .inspect import format_layer_weights


def parse_arguments(argv: list[str]):
    """`(ModelArguments, DataArguments, TrainingArguments)` from the command line, with `bermo train`'s defaults."""
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments), prog="bermo train")
    parser.description = __doc__.split("\n\n", 1)[1].replace("\n", " ")
    known, _ = parser.parse_known_args(argv)
    has_validation = known.validation_file is not None or known.dataset_name is not None
    parser.set_defaults(
        eval_strategy="epoch" if has_validation else "no",
        save_strategy="epoch",
        load_best_model_at_end=has_validation,
        save_total_limit=1,
    )
    try:
        return parser.parse_args_into_dataclasses(argv)
    except ValueError as error:  # TrainingArguments' own consistency checks
        raise BermoUsageError(" ".join(str(error).split())) from None


def resolve_checkpoint_to_resume(resume_from_checkpoint: str | None, output_dir: Path) -> str | None:
    """`--resume_from_checkpoint`: a checkpoint folder, or `last` / `true` for the newest one in OUTPUT_DIR."""
    from transformers.trainer_utils import get_last_checkpoint

    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint.lower() in ("last", "true"):
        for folder in (output_dir, partial_dir_for(output_dir)):
            last = get_last_checkpoint(folder) if folder.is_dir() else None
            if last is not None:
                return last
        raise BermoUsageError(f"--resume_from_checkpoint {resume_from_checkpoint}: {output_dir} has no checkpoint.")
    if not Path(resume_from_checkpoint).is_dir():
        raise BermoUsageError(f"--resume_from_checkpoint {resume_from_checkpoint}: no such checkpoint folder.")
    return resume_from_checkpoint


@reports_usage_errors("train")
def main(argv: list[str]) -> int:
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("bermo_hf").setLevel(logging.INFO if training_args.should_log else logging.WARNING)

    output_dir = Path(training_args.output_dir)
    resume = resolve_checkpoint_to_resume(training_args.resume_from_checkpoint, output_dir)
    if training_args.push_to_hub and training_args.hub_model_id is None:
        training_args.hub_model_id = output_dir.absolute().name  # not the temporary folder's name
    keep_partial = resume is not None and partial_dir_for(output_dir) in Path(resume).absolute().parents
    with output_dir_written_atomically(output_dir, keep_partial=keep_partial) as partial_dir:
        training_args.output_dir = str(partial_dir)
        trainer = build_trainer(model_args, data_args, training_args)
        metrics = train_and_evaluate(trainer, resume_from_checkpoint=resume)
        if getattr(trainer, "push_in_progress", None) is not None:
            trainer.push_in_progress.wait_until_done()  # checkpoint uploads read the folder about to be renamed
    training_args.output_dir = str(output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message="End of training")

    if trainer.is_world_process_zero():
        for key, value in metrics.items():
            if key.startswith("eval_") and not key.endswith(("_runtime", "_per_second")):
                print(f"{key}: {value:.4f}")
        layer_weights = LayerWeights.from_model(trainer.model)
        if layer_weights is not None:
            print(format_layer_weights(layer_weights))
        print(f"{'BERT baseline' if model_args.baseline else 'BERMo'} model and metrics.json written to {output_dir}")
    return 0
