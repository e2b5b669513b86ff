"""`bermo train`: fine-tune BERMo (or, with `--baseline`, plain BERT) on a labelled file with the standard `Trainer`.

Every `TrainingArguments` flag is accepted. Defaults that differ from `TrainingArguments`': with validation data,
evaluation and saving each epoch and the best model (by eval loss, or `--metric_for_best_model`) kept at the end;
`--save_total_limit 1`. OUTPUT_DIR receives the checkpoints as they are saved, then the model (Hub-ready) and
`metrics.json`, each file complete or absent; a non-empty OUTPUT_DIR is refused unless `--overwrite_output_dir` (which
replaces only the files written, never removes others) or `--resume_from_checkpoint` continues its run. After Ctrl-C,
SIGTERM or an error the checkpoints stay for `--resume_from_checkpoint last`. `--push_to_hub` publishes the model
with the BERMo model card, merged into the card already on the Hub.
"""

import logging
import sys
from pathlib import Path

from ..checkpoints import resolve_checkpoint_to_resume
from ..errors import BermoUsageError
from ..layer_weights import LayerWeights, format_layer_weights
from ..output_folders import prepare_training_output_dir
from ..training import (
    DataArguments,
    ModelArguments,
    build_trainer,
    eval_scores,
    take_label_names_as_class_names,
    train_and_evaluate,
)
from ._common import checkpoints_kept_on_interrupt, output_folder_argument_classes, reports_usage_errors


def parse_arguments(argv: list[str]):
    """`(ModelArguments, DataArguments, TrainingArguments, overwrite_output_dir)` from the command line, with
    `bermo train`'s defaults."""
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(
        (ModelArguments, DataArguments, TrainingArguments, *output_folder_argument_classes()), prog="bermo train"
    )
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
        model_args, data_args, training_args, *output_args = parser.parse_args_into_dataclasses(argv)
    except ValueError as error:  # TrainingArguments' own consistency checks
        raise BermoUsageError(" ".join(str(error).split())) from None
    overwrite = any(getattr(args, "overwrite_output_dir", False) for args in (training_args, *output_args))
    take_label_names_as_class_names(data_args, training_args)
    return model_args, data_args, training_args, overwrite


@reports_usage_errors("train")
def main(argv: list[str]) -> int:
    model_args, data_args, training_args, overwrite = parse_arguments(argv)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("bermo_hf").setLevel(logging.INFO if training_args.should_log else logging.WARNING)

    output_dir = Path(training_args.output_dir)
    resume = resolve_checkpoint_to_resume(training_args.resume_from_checkpoint, output_dir)
    created = prepare_training_output_dir(output_dir, overwrite, resume, training_args)
    with checkpoints_kept_on_interrupt("train", output_dir, created):
        trainer = build_trainer(model_args, data_args, training_args)
        metrics = train_and_evaluate(trainer, resume_from_checkpoint=resume)
        if training_args.push_to_hub:
            trainer.push_to_hub(commit_message="End of training")

    if trainer.is_world_process_zero():
        for key, value in eval_scores(metrics).items():
            print(f"{key}: {value:.4f}")
        layer_weights = LayerWeights.from_model(trainer.model)
        if layer_weights is not None:
            print(format_layer_weights(layer_weights))
        print(f"{'BERT baseline' if model_args.baseline else 'BERMo'} model and metrics.json written to {output_dir}")
    return 0
