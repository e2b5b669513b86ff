"""`BermoTrainer` and the whole run of `bermo train`: `build_trainer` (data, model, metrics, callbacks) and
`train_and_evaluate` (train, evaluate, save Hub-ready with the model card and `metrics.json`)."""

import json
from collections.abc import Callable
from pathlib import Path

from transformers import (
    AutoTokenizer,
    DataCollatorWithPadding,
    PreTrainedModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from ..checkpoints import load_checkpoint_config
from ..errors import BermoUsageError
from ..hub import is_hub_id, load_hub_model_card, model_card_info, set_model_card_info, write_model_card
from ..layer_weights import LayerWeights, find_layer_mix
from ..output_folders import final_files_written_atomically
from .callbacks import LayerWeightsCallback
from .data import DataArguments, describe_training_data, load_raw_datasets, tokenize_datasets
from .labels import LabelSpace, name_classes
from .metrics import build_compute_metrics, last_eval_metrics
from .model import ModelArguments, load_model
from .optimization import ParameterGroupsTrainer, layer_mix_group

METRICS_FILENAME = "metrics.json"


class BermoTrainer(ParameterGroupsTrainer):
    """The standard `Trainer`, plus:

    - the loss is taken as the model computes it (a batch mean), also with several processes;
    - the layer mix in an optimizer group of its own (`mix_learning_rate`, never weight decay), see
      `separate_parameter_groups`;
    - for a BERMo model, `create_model_card` (run by `push_to_hub`) writes the BERMo model card, with the base
      model, data and last evaluation scores, instead of the generic Trainer card, merged into the card the Hub
      repository already has.
    """

    def __init__(self, *args, mix_learning_rate: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mix_learning_rate = mix_learning_rate
        # The BERT and BERMo heads average their loss over the batch themselves and ignore `num_items_in_batch`;
        # taking their `**kwargs` for loss arguments, the Trainer would multiply the loss by the number of processes.
        self.model_accepts_loss_kwargs = False

    def separate_parameter_groups(self, model) -> list[dict]:
        """The layer mix's group (`layer_mix_group`: `mix_learning_rate`, defaulting to the learning rate, and no
        weight decay), after those of the parent classes."""
        learning_rate = self.args.learning_rate if self.mix_learning_rate is None else self.mix_learning_rate
        mix_group = layer_mix_group(model, learning_rate)
        return super().separate_parameter_groups(model) + ([mix_group] if mix_group else [])

    def create_model_card(
        self,
        *args,
        dataset: str | list[str] | None = None,
        finetuned_from: str | None = None,
        tags: str | list[str] | None = None,
        language: str | None = None,
        license: str | None = None,
        **kwargs,
    ):
        """For a BERMo model (run by `push_to_hub`): BERMo's card in `args.output_dir/README.md`, with the base model,
        data and last evaluation scores, merged into the card the Hub repository already has (its metadata and prose
        kept, `tags` added); without a Hub card, into the folder's own. Other models get the `Trainer`'s card."""
        model = self.accelerator.unwrap_model(self.model)
        if find_layer_mix(model) is None or not isinstance(model, PreTrainedModel):
            return super().create_model_card(
                *args,
                dataset=dataset,
                finetuned_from=finetuned_from,
                tags=tags,
                language=language,
                license=license,
                **kwargs,
            )
        if not self.is_world_process_zero():
            return None
        info = model_card_info(model)
        repo_id = getattr(self, "hub_model_id", None) or self.args.hub_model_id
        updates = {
            "repo_id": repo_id or info.repo_id,
            "metrics": last_eval_metrics(self.state.log_history) or info.metrics,
        }
        if finetuned_from:
            updates["base_model"] = finetuned_from
        if dataset:
            updates["datasets"] = [dataset] if isinstance(dataset, str) else list(dataset)
        set_model_card_info(model, **updates)
        hub_card = load_hub_model_card(repo_id, token=self.args.hub_token) if repo_id else None
        metadata = {key: value for key, value in (("language", language), ("license", license)) if value is not None}
        tags = [tags] if isinstance(tags, str) else tags
        write_model_card(model, self.args.output_dir, existing=hub_card, tags=tags, metadata=metadata)
        return None


def build_trainer(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    callbacks: list[TrainerCallback] | None = None,
    trainer_class: type[BermoTrainer] | None = None,
    **trainer_kwargs,
) -> BermoTrainer:
    """Everything `bermo train` does before training: reads and checks the data, builds the label space, loads the
    tokenizer and the model (BERMo, or BERT with `model_args.baseline`; seeded with `training_args.seed`), tokenizes,
    and returns a `BermoTrainer` with dynamic padding, the task's metrics and a `LayerWeightsCallback`.

    `trainer_class` (a `BermoTrainer` subclass) and `trainer_kwargs` (its extra arguments) let other commands reuse
    all of this. `trainer.label_space` holds the `LabelSpace`. Raises `BermoUsageError` on bad data (see
    `load_raw_datasets`) and for a `max_seq_length` above the tokenizer's `model_max_length`."""
    raw = load_raw_datasets(data_args)
    label_space = LabelSpace.from_datasets(raw, data_args.label_column)
    checkpoint_config = load_checkpoint_config(model_args.model_name_or_path)
    label_space = name_classes(label_space, checkpoint_config, data_args.class_names)
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, config=checkpoint_config)
    if data_args.max_seq_length > tokenizer.model_max_length:
        raise BermoUsageError(
            f"--max_seq_length {data_args.max_seq_length} is longer than {model_args.model_name_or_path} takes: its "
            f"tokenizer's model_max_length is {tokenizer.model_max_length}; use at most that."
        )
    set_seed(training_args.seed)
    model = load_model(model_args, label_space, checkpoint_config)
    with training_args.main_process_first(desc="tokenizing"):
        tokenized = tokenize_datasets(raw, tokenizer, data_args, label_space)
    if find_layer_mix(model) is not None:
        _describe_for_the_model_card(model, model_args, data_args, training_args)
    trainer = (trainer_class or BermoTrainer)(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized.get("validation"),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=build_compute_metrics(label_space),
        callbacks=[LayerWeightsCallback(), *(callbacks or [])],
        mix_learning_rate=model_args.mix_learning_rate,
        **trainer_kwargs,
    )
    trainer.label_space = label_space
    return trainer


def _describe_for_the_model_card(model, model_args, data_args, training_args) -> None:
    """What BERMo's model card says of the run: the base model (a Hub id), the data and the Hub repository."""
    base_model = model_args.model_name_or_path if is_hub_id(model_args.model_name_or_path) else None
    set_model_card_info(
        model,
        base_model=base_model or model_card_info(model).base_model,
        datasets=[data_args.dataset_name] if data_args.dataset_name else [],
        training_data=describe_training_data(data_args),
        repo_id=training_args.hub_model_id,
    )


def train_and_evaluate(
    trainer: Trainer,
    resume_from_checkpoint: str | None = None,
    output_dir: str | Path | None = None,
    write_more_files: Callable[[Path, dict], None] | None = None,
) -> dict:
    """Trains, evaluates on the validation split (if any), saves the final (or best, with `load_best_model_at_end`)
    model Hub-ready into `output_dir` (defaults to `trainer.args.output_dir`), and writes `metrics.json` there.

    The final files are saved beside and renamed into place one by one (see
    `output_folders.final_files_written_atomically`): each is complete or absent, and nothing else in the folder is
    touched. A BERMo model gets its model card and chart (`hub.write_model_card`, merged into a card already in the
    folder). Checkpoints are the `Trainer`'s own, in `trainer.args.output_dir` as it saves them (no card, as for any
    transformers model). `write_more_files(folder, metrics)`, run on the main process, writes a caller's own final files
    into the same staging folder, so that they appear with the others.

    Returns the metrics: the train and eval scores, plus `layer_weights` (see `LayerWeights.to_dict`; None for
    plain BERT) and, when several processes trained, `layer_weights_by_rank` (each rank's mix weights)."""
    from accelerate.utils import gather_object

    train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    metrics = dict(train_output.metrics)
    if trainer.eval_dataset is not None:
        metrics.update(trainer.evaluate())
    model = trainer.accelerator.unwrap_model(trainer.model)
    layer_weights = LayerWeights.from_model(model)
    metrics["model_type"] = model.config.model_type if layer_weights is None else "bermo"
    metrics["layer_weights"] = None if layer_weights is None else layer_weights.to_dict()
    if trainer.args.world_size > 1 and layer_weights is not None:
        metrics["layer_weights_by_rank"] = gather_object([layer_weights.weights + [layer_weights.gamma]])
    if layer_weights is not None:
        set_model_card_info(model, metrics=last_eval_metrics(trainer.state.log_history))
    with final_files_written_atomically(output_dir or trainer.args.output_dir) as staging:
        # `_internal_call`: with `push_to_hub` set, a public `save_model` would also upload, before the files are in
        # place; the caller pushes once they are.
        trainer.save_model(str(staging), _internal_call=True)
        if trainer.is_world_process_zero():
            if layer_weights is not None:
                write_model_card(model, staging)  # merged into the card already in the output folder
            Path(staging, METRICS_FILENAME).write_text(json.dumps(metrics, indent=2) + "\n")
            if write_more_files is not None:
                write_more_files(staging, metrics)
    return metrics
