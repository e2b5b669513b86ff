"""Fine-tuning pieces: data reading and checks, label space, optimizer groups, callback, Trainer resume."""

import json
from pathlib import Path

import pytest
import torch

from bermo_hf import BermoForSequenceClassification
from bermo_hf.errors import BermoUsageError
from bermo_hf.training import (
    BermoTrainer,
    DataArguments,
    LabelSpace,
    LayerWeightsCallback,
    ModelArguments,
    build_trainer,
    load_raw_datasets,
    mix_parameter_groups,
    train_and_evaluate,
)

from .conftest import tiny_config_kwargs

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the a an and or but not no very so too is was are be it this that film movie story plot acting food service "
    "good great fine best love lovely fun funny warm fresh clear bad awful dull boring worst cold slow stale rude "
    "hate poor weak of to in on for with at by from as i we you he she they my our , . ! ? ' s"
).split()


def save_tiny_bert(folder: Path, **config_overrides) -> Path:
    """Writes a tiny random BERT checkpoint (hidden 32, 2 layers, vocab 100) and a WordPiece tokenizer into `folder`."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL_TOKENS + WORDS
    vocab += [f"[unused{i}]" for i in range(100 - len(vocab))]
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(**tiny_config_kwargs(**config_overrides))).save_pretrained(folder)
    return folder


def write_tsv(path: Path, rows: list[tuple[str, str]], header: str = "sentence\tlabel") -> Path:
    path.write_text(header + "\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    return path


SENTENCES = [
    ("the film was great fun", "pos"),
    ("a lovely , warm story", "pos"),
    ("the food was awful", "neg"),
    ("dull and boring plot", "neg"),
    ('he said "best movie" !', "pos"),
    ("cold , slow service", "neg"),
    ("i love this film", "pos"),
    ("the worst acting", "neg"),
]


@pytest.fixture
def tiny_bert(tmp_path) -> Path:
    return save_tiny_bert(tmp_path / "tiny-bert")


@pytest.fixture
def sentiment_files(tmp_path) -> tuple[str, str]:
    train = write_tsv(tmp_path / "train.tsv", SENTENCES * 4)
    dev = write_tsv(tmp_path / "dev.tsv", SENTENCES[:4])
    return str(train), str(dev)


def test_tsv_is_read_unquoted_with_label_list_from_train(sentiment_files):
    train, dev = sentiment_files
    data_args = DataArguments(train_file=train, validation_file=dev)
    raw = load_raw_datasets(data_args)
    assert data_args.text_column == "sentence"
    assert len(raw["train"]) == 32 and len(raw["validation"]) == 4
    assert raw["train"][4]["sentence"] == 'he said "best movie" !'
    space = LabelSpace.from_datasets(raw, "label")
    assert space.labels == ["neg", "pos"] and not space.is_regression
    assert space.encode(["pos", "neg"]) == [1, 0]


def test_json_lines_and_regression_labels(tmp_path):
    path = tmp_path / "scores.jsonl"
    path.write_text("".join(json.dumps({"text": t, "score": s}) + "\n" for t, s in [("good", 4.5), ("bad", 0.5)]))
    data_args = DataArguments(train_file=str(path), label_column="score")
    raw = load_raw_datasets(data_args)
    space = LabelSpace.from_datasets(raw, "score")
    assert space.is_regression and space.num_labels == 1 and data_args.text_column == "text"


@pytest.mark.parametrize(
    "make_file, expected",
    [
        (lambda d: d / "absent.tsv", "absent.tsv: no such file"),
        (lambda d: write_tsv(d / "data.txt", SENTENCES), "unsupported extension '.txt'"),
        (lambda d: (d / "empty.csv").write_text("") or d / "empty.csv", "empty.csv is empty"),
        (lambda d: write_tsv(d / "header.tsv", []), "header.tsv has no rows"),
        (
            lambda d: write_tsv(d / "cols.tsv", SENTENCES, header="review\tlabel"),
            "cols.tsv has no text column (looked for text or sentence); name it with --text_column; "
            "columns present: review, label.",
        ),
    ],
)
def test_bad_train_files_raise_one_clear_message(tmp_path, make_file, expected):
    with pytest.raises(BermoUsageError) as error:
        load_raw_datasets(DataArguments(train_file=str(make_file(tmp_path))))
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_label_column_is_named(sentiment_files):
    with pytest.raises(BermoUsageError, match=r"train.tsv has no column 'stars' \(--label_column\); columns present: "):
        load_raw_datasets(DataArguments(train_file=sentiment_files[0], label_column="stars"))


def test_validation_labels_absent_from_train(tmp_path, sentiment_files):
    dev = write_tsv(tmp_path / "dev3.tsv", [("so so", "neutral"), ("great", "pos")])
    raw = load_raw_datasets(DataArguments(train_file=sentiment_files[0], validation_file=str(dev)))
    with pytest.raises(BermoUsageError, match="absent from the train data: neutral"):
        LabelSpace.from_datasets(raw, "label")


def test_mix_parameter_groups_put_the_mix_apart_without_decay(tiny_config):
    model = BermoForSequenceClassification(tiny_config)
    groups = mix_parameter_groups(model, weight_decay=0.1, learning_rate=1e-4, mix_learning_rate=5e-3)
    names = {id(p): n for n, p in model.named_parameters()}
    by_group = [{names[id(p)] for p in group["params"]} for group in groups]
    assert (groups[0]["lr"], groups[0]["weight_decay"]) == (1e-4, 0.1)
    assert (groups[1]["lr"], groups[1]["weight_decay"]) == (1e-4, 0.0)
    assert by_group[2] == {"bert.layer_mix.weights", "bert.layer_mix.gamma"}
    assert (groups[2]["lr"], groups[2]["weight_decay"]) == (5e-3, 0.0)
    assert "classifier.weight" in by_group[0] and "bert.encoder.layer.0.attention.self.query.weight" in by_group[0]
    assert "classifier.bias" in by_group[1] and "bert.embeddings.LayerNorm.weight" in by_group[1]
    assert sum(map(len, by_group)) == len(names)


def test_mix_learning_rate_defaults_to_the_learning_rate(tiny_config):
    groups = mix_parameter_groups(BermoForSequenceClassification(tiny_config), 0.0, 3e-5)
    assert {group["lr"] for group in groups} == {3e-5}


def test_a_model_without_a_mix_gets_the_plain_trainers_groups(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification, Trainer

    model = BertForSequenceClassification(BertConfig(**tiny_config_kwargs()))
    plain = Trainer(model=model, args=_training_args(tmp_path)).create_optimizer()
    ours = BermoTrainer(model=model, args=_training_args(tmp_path), mix_learning_rate=0.5).create_optimizer()
    settings = [[(id(p), group["lr"], group["weight_decay"]) for p in group["params"]] for group in plain.param_groups]
    assert [[(id(p), group["lr"], group["weight_decay"]) for p in group["params"]] for group in ours.param_groups] == (
        settings
    )


def _training_args(output_dir, **overrides):
    from transformers import TrainingArguments

    settings = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        weight_decay=0.01,
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=7,
    )
    return TrainingArguments(**{**settings, **overrides})


def _trainer(tiny_bert, files, output_dir, **overrides) -> BermoTrainer:
    model_args = ModelArguments(model_name_or_path=str(tiny_bert), mix_learning_rate=0.05)
    data_args = DataArguments(train_file=files[0], validation_file=files[1])
    return build_trainer(model_args, data_args, _training_args(output_dir, **overrides))


def test_trainer_has_the_mix_group_and_logs_layer_weights_at_each_evaluation(tiny_bert, sentiment_files, tmp_path):
    trainer = _trainer(
        tiny_bert, sentiment_files, tmp_path / "out", num_train_epochs=2, eval_strategy="epoch", logging_steps=1
    )
    metrics = train_and_evaluate(trainer)
    mix_group = trainer.optimizer.param_groups[-1]
    assert (mix_group["weight_decay"], len(mix_group["params"])) == (0.0, 2)
    # the learning rate the Trainer logs is the model's (at most 1e-3), not the mix's (0.05)
    logged_rates = [record["learning_rate"] for record in trainer.state.log_history if "learning_rate" in record]
    assert logged_rates and max(logged_rates) <= 1e-3
    callback = next(c for c in trainer.callback_handler.callbacks if isinstance(c, LayerWeightsCallback))
    assert len(callback.history) == 3  # two epochs, then the final evaluation
    assert [r["step"] for r in callback.history] == [4, 8, 8]
    assert any("layer_weights" in record for record in trainer.state.log_history)
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["model_type"] == "bermo" and {"eval_accuracy", "eval_f1", "eval_matthews_correlation"} <= set(saved)
    assert saved["layer_weights"]["weights"] == pytest.approx(callback.history[-1]["weights"])
    assert saved["layer_weights"]["weights"] != pytest.approx([1 / 3] * 3)  # the mix did learn
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["model_type"] == "bermo" and "AutoModelForSequenceClassification" in config["auto_map"]
    assert config["id2label"] == {"0": "neg", "1": "pos"}
    assert metrics["eval_accuracy"] == saved["eval_accuracy"]


@pytest.mark.parametrize("baseline", [False, True])
def test_build_trainer_reads_the_checkpoint_configuration_once(
    tiny_bert, sentiment_files, tmp_path, config_reads, baseline
):
    model_args = ModelArguments(model_name_or_path=str(tiny_bert), baseline=baseline)
    data_args = DataArguments(train_file=sentiment_files[0], validation_file=sentiment_files[1])
    build_trainer(model_args, data_args, _training_args(tmp_path / "out", max_steps=2))
    assert config_reads == [str(tiny_bert / "config.json")]


def test_baseline_is_plain_bert_with_the_same_setup(tiny_bert, sentiment_files, tmp_path):
    model_args = ModelArguments(model_name_or_path=str(tiny_bert), baseline=True)
    data_args = DataArguments(train_file=sentiment_files[0], validation_file=sentiment_files[1])
    trainer = build_trainer(model_args, data_args, _training_args(tmp_path / "out", max_steps=2))
    assert type(trainer.model).__name__ == "BertForSequenceClassification"
    metrics = train_and_evaluate(trainer)
    assert metrics["model_type"] == "bert" and metrics["layer_weights"] is None


def test_resuming_from_a_checkpoint_equals_uninterrupted_training(tiny_bert, sentiment_files, tmp_path):
    settings = dict(max_steps=4, save_strategy="steps", save_steps=2)
    straight = _trainer(tiny_bert, sentiment_files, tmp_path / "straight", **settings)
    straight.train()  # saves checkpoint-2 on the way
    resumed = _trainer(tiny_bert, sentiment_files, tmp_path / "resumed", **settings)
    resumed.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-2"))

    def mix_and_optimizer(trainer):
        mix = trainer.model.bert.layer_mix
        state = trainer.optimizer.state
        return [mix.weights, mix.gamma, state[mix.weights]["exp_avg"], state[mix.weights]["exp_avg_sq"]]

    for expected, actual in zip(mix_and_optimizer(straight), mix_and_optimizer(resumed), strict=True):
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-7)
    assert resumed.state.global_step == 4
    for name, parameter in straight.model.named_parameters():
        torch.testing.assert_close(dict(resumed.model.named_parameters())[name], parameter, rtol=0, atol=1e-6)
