"""The fine-tuning recipe the benchmark scripts share: the device, the `TrainingArguments` of a run (linear schedule,
evaluation every few steps, no checkpoint, bf16 on a GPU), a `BermoTrainer` that prints one line per evaluation, and a
run's dev-accuracy curve."""

import tempfile
import time
from collections.abc import Callable


def resolve_device(choice: str) -> str:
    """`auto` -> `cuda` when there is a GPU, else `cpu`; `cuda` without a GPU stops the script with one line."""
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    return choice


def training_arguments(
    output_dir: str,
    *,
    seed: int,
    device: str,
    max_steps: int,
    batch_size: int,
    learning_rate: float,
    warmup_steps: int,
    weight_decay: float,
    eval_every: int,
    group_by_length: bool = True,
):
    """The `TrainingArguments` of a bench run: `max_steps` steps of `batch_size` on a linear schedule after
    `warmup_steps`, the dev set evaluated (and the loss logged) every `eval_every` steps, no checkpoint, batches of
    similar lengths (`group_by_length`), the data order seeded, bf16 on a GPU."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        learning_rate=learning_rate,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        lr_scheduler_type="linear",
        eval_strategy="steps",
        eval_steps=eval_every,
        logging_steps=eval_every,
        save_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        dataloader_num_workers=0,
        dataloader_pin_memory=device == "cuda",
        use_cpu=device == "cpu",
        bf16=device == "cuda",
        disable_tqdm=True,
    )


def make_progress_callback(tag: str, max_steps: int):
    """A `TrainerCallback` that prints one line per dev evaluation, so progress shows in a log file."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def __init__(self):
            self.start = time.perf_counter()

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
            loss = f"{losses[-1]:.4f}" if losses else "-"
            elapsed = time.perf_counter() - self.start
            print(
                f"[{tag}] step {state.global_step:>5}/{max_steps}  dev acc {metrics['eval_accuracy']:.4f}  "
                f"train loss {loss}  {elapsed:6.0f}s",
                flush=True,
            )

    return Progress()


def curve_from_history(initial: dict, log_history: list[dict]) -> list[dict]:
    """The dev-accuracy curve of a run: step 0 (`initial`, the evaluation before training), then every evaluation in
    the `Trainer`'s log history, each with the training loss logged at its step (None where none was)."""
    losses = {entry["step"]: entry["loss"] for entry in log_history if "loss" in entry}
    curve = [{"step": 0, "dev_accuracy": initial["eval_accuracy"], "train_loss": None}]
    for entry in log_history:
        if "eval_accuracy" in entry and entry["step"] > curve[-1]["step"]:
            curve.append(
                {"step": entry["step"], "dev_accuracy": entry["eval_accuracy"], "train_loss": losses.get(entry["step"])}
            )
    return curve


def train_with_curve(
    model,
    *,
    tag: str,
    seed: int,
    device: str,
    train_dataset,
    eval_dataset,
    tokenizer,
    compute_metrics: Callable,
    mix_learning_rate: float | None,
    **schedule,
) -> dict:
    """Fine-tunes `model` with `bermo train`'s `BermoTrainer` (for a plain model, the `Trainer`'s own parameter
    groups; for BERMo, the mix's group at `mix_learning_rate`) on `training_arguments(..., **schedule)`: evaluates
    before training, every `eval_every` steps and at the last step. Returns `curve` (`curve_from_history`), `steps`
    and `wall_time_s`."""
    import torch
    from transformers import DataCollatorWithPadding, PrinterCallback

    from bermo_hf.training import BermoTrainer

    with tempfile.TemporaryDirectory() as output_dir:
        trainer = BermoTrainer(
            model=model,
            mix_learning_rate=mix_learning_rate,
            args=training_arguments(output_dir, seed=seed, device=device, **schedule),
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=compute_metrics,
            callbacks=[make_progress_callback(tag, schedule["max_steps"])],
        )
        trainer.remove_callback(PrinterCallback)  # the progress callback prints one concise line per evaluation
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        initial = trainer.evaluate()
        trainer.train()
        evaluated = [entry["step"] for entry in trainer.state.log_history if "eval_accuracy" in entry]
        if not evaluated or evaluated[-1] != trainer.state.global_step:
            trainer.evaluate()
        wall_time = time.perf_counter() - start
    return {
        "curve": curve_from_history(initial, trainer.state.log_history),
        "steps": trainer.state.global_step,
        "wall_time_s": wall_time,
    }
