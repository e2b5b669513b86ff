"""The `bermo` commands on checkpoints of other families: `convert`, `train` (and `--baseline`), `inspect`, `predict`,
`export --onnx`, `prune` and `probe` on tiny random RoBERTa, DeBERTa-v3, ModernBERT, ELECTRA, DistilBERT, ALBERT and
MPNet checkpoints, each saved with a tokenizer of its family's kind (byte-level BPE, SentencePiece-style unigram or
WordPiece, with the family's special tokens and pair encoding); and `convert` on an unsupported model type."""

import json
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoModelForSequenceClassification, GPT2Config

import bermo_hf
from bermo_hf.cli import main as bermo
from bermo_hf.demo import predict_in_fresh_process

from .families import TINY_FAMILIES, family_kind_tokenizer
from .test_training import SENTENCES, write_tsv

FAMILIES = [
    family
    for family in TINY_FAMILIES
    if family.id in ("roberta", "deberta-v3", "modernbert", "electra", "distilbert", "albert", "mpnet")
]


def run_bermo(capsys, *argv) -> tuple[int, str, str]:
    status = bermo([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def save_plain_checkpoint(folder: Path, family) -> Path:
    """A tiny random checkpoint of the family's own sequence classifier, with a tokenizer of the family's kind."""
    tokenizer = family_kind_tokenizer(family, folder)
    plain_type = bermo_hf.family_of(family.model_type).model_type
    # Room for the longest text of the tests in pieces of a small vocabulary (ONNX export's check batch included).
    settings = {**family.settings, "vocab_size": max(100, len(tokenizer)), "max_position_embeddings": 128}
    config = AutoConfig.for_model(plain_type, **settings)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.id)
def test_convert_inspect_and_predict_work_for_the_family(family, tmp_path, capsys):
    source = save_plain_checkpoint(tmp_path / "plain", family)
    out = tmp_path / "bermo"
    status, _, err = run_bermo(capsys, "convert", source, out, "--labels", "neg,pos")
    assert status == 0, err
    config = json.loads((out / "config.json").read_text())
    model_class = bermo_hf.family_of(family.model_type).model_class("sequence-classification")
    assert config["model_type"] == family.model_type and config["architectures"] == [model_class.__name__]
    assert (
        "A [BERMo](" in (out / "README.md").read_text()
        and bermo_hf.family_of(family.model_type).name in (out / "README.md").read_text()
    )
    status, stdout, err = run_bermo(capsys, "inspect", out, "--json")
    assert status == 0, err
    assert len(json.loads(stdout)["weights"]) == 4
    status, stdout, err = run_bermo(capsys, "predict", out, "a gripping film", "the plot is thin", "--json")
    assert status == 0, err
    predictions = [json.loads(line) for line in stdout.splitlines()]
    assert len(predictions) == 2 and {prediction["label"] for prediction in predictions} <= {"neg", "pos"}
    # The converted folder alone, through `pipeline` in a process that cannot import bermo_hf, predicts the same.
    reloaded = predict_in_fresh_process(out, ["a gripping film", "the plot is thin"])
    assert [p["label"] for p in reloaded["predictions"]] == [p["label"] for p in predictions]
    assert [p["score"] for p in reloaded["predictions"]] == pytest.approx([p["score"] for p in predictions], abs=1e-5)
    status, stdout, err = run_bermo(capsys, "export", out, tmp_path / "onnx", "--onnx")
    assert status == 0, err
    assert "largest difference from PyTorch" in stdout and (tmp_path / "onnx" / "model.onnx").is_file()


@pytest.mark.parametrize("family", FAMILIES[:3], ids=lambda family: family.id)
@pytest.mark.parametrize("baseline", [False, True], ids=["bermo", "baseline"])
def test_train_fine_tunes_the_familys_model(family, baseline, tmp_path, capsys):
    source = save_plain_checkpoint(tmp_path / "plain", family)
    train = write_tsv(tmp_path / "train.tsv", SENTENCES)
    argv = ["train", "--model_name_or_path", source, "--train_file", train, "--output_dir", tmp_path / "out"]
    argv += ["--max_steps", "2", "--per_device_train_batch_size", "4", "--report_to", "none", "--save_strategy", "no"]
    argv += ["--max_seq_length", 4096 if family.id == "modernbert" else 512]  # ModernBERT's long context is allowed
    status, _, err = run_bermo(capsys, *argv, *(["--baseline"] if baseline else []))
    assert status == 0, err
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    plain_type = bermo_hf.family_of(family.model_type).model_type
    assert config["model_type"] == (plain_type if baseline else family.model_type)


def test_train_refuses_a_max_seq_length_above_the_tokenizers_in_one_line(tmp_path, capsys):
    family = next(family for family in FAMILIES if family.id == "roberta")
    source = save_plain_checkpoint(tmp_path / "plain", family)
    train = write_tsv(tmp_path / "train.tsv", SENTENCES)
    argv = ["train", "--model_name_or_path", source, "--train_file", train, "--output_dir", tmp_path / "out"]
    status, _, err = run_bermo(capsys, *argv, "--max_seq_length", "4096", "--report_to", "none")
    assert status == 1 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("bermo ")]
    assert "--max_seq_length 4096 is longer than" in line and "model_max_length is 512" in line
    assert not (tmp_path / "out" / "config.json").exists()


def test_convert_refuses_an_unsupported_model_type_in_one_line_and_writes_nothing(tmp_path, capsys):
    GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=100).save_pretrained(tmp_path / "gpt2")
    status, _, err = run_bermo(capsys, "convert", tmp_path / "gpt2", tmp_path / "out")
    assert status == 1 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("bermo ")]
    assert "model type 'gpt2' is not supported by BERMo; supported families: BERT (bert), RoBERTa (roberta)" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.id)
def test_prune_reaches_the_target_sparsity_on_the_encoders_linear_layers_only(family, tmp_path, capsys):
    source = save_plain_checkpoint(tmp_path / "plain", family)
    train = write_tsv(tmp_path / "train.tsv", SENTENCES)
    argv = ["prune", "--model_name_or_path", source, "--train_file", train, "--output_dir", tmp_path / "out"]
    argv += ["--method", "magnitude", "--final_sparsity", "0.5", "--warmup_steps_pruning", "1", "--max_steps", "3"]
    argv += ["--per_device_train_batch_size", "4", "--report_to", "none", "--use_cpu", "true"]
    status, _, err = run_bermo(capsys, *argv)
    assert status == 0, err
    report = json.loads((tmp_path / "out" / "pruning_report.json").read_text())["sparsity"]
    assert report["encoder"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert all(
        counts["sparsity"] == pytest.approx(0.5, abs=0.01) for counts in report["roles"].values() if counts["total"]
    )
    assert {role for role, counts in report["roles"].items() if counts["total"]} == {
        "attention_in", "attention_out", "feed_forward_in", "feed_forward_out"
    }  # fmt: skip
    assert all(counts["sparsity"] < 0.05 for counts in report["others"].values())  # embeddings, pooler, head untouched


def test_prune_baseline_prunes_the_familys_plain_model(tmp_path, capsys):
    family = next(family for family in FAMILIES if family.id == "modernbert")
    source = save_plain_checkpoint(tmp_path / "plain", family)
    train = write_tsv(tmp_path / "train.tsv", SENTENCES)
    argv = ["prune", "--model_name_or_path", source, "--train_file", train, "--output_dir", tmp_path / "out"]
    argv += ["--method", "movement", "--final_sparsity", "0.5", "--max_steps", "3", "--baseline"]
    argv += ["--per_device_train_batch_size", "4", "--report_to", "none", "--use_cpu", "true"]
    status, _, err = run_bermo(capsys, *argv)
    assert status == 0, err
    assert json.loads((tmp_path / "out" / "config.json").read_text())["model_type"] == "modernbert"
    report = json.loads((tmp_path / "out" / "pruning_report.json").read_text())
    assert report["model_type"] == "modernbert" and report["sparsity"]["encoder"]["sparsity"] == pytest.approx(
        0.5, 0.02
    )


@pytest.mark.parametrize(
    ("family_id", "mode"),
    [("roberta", "finetune"), ("modernbert", "frozen")],
    ids=["roberta-finetune", "modernbert-frozen"],
)
def test_probe_compares_the_familys_plain_model_with_its_bermo_variant(family_id, mode, tmp_path, capsys):
    from .test_probing import FIXTURE_TASKS, write_senteval_file

    family = next(family for family in FAMILIES if family.id == family_id)
    source = save_plain_checkpoint(tmp_path / "plain", family)
    data_dir = tmp_path / "probing"
    data_dir.mkdir()
    for task in FIXTURE_TASKS:
        write_senteval_file(data_dir / f"{task}.txt", task)
    argv = ["probe", "--model_name_or_path", source, "--data_dir", data_dir, "--output_dir", tmp_path / "out"]
    argv += ["--mode", mode, "--tasks", "past_present"]
    if mode == "finetune":
        argv += [
            "--num_train_epochs",
            "1",
            "--batch_size",
            "16",
            "--max_train_samples",
            "24",
            "--max_eval_samples",
            "8",
        ]
    else:
        argv += ["--probe_c", "1.0", "--probe_max_iter", "100"]
    status, _, err = run_bermo(capsys, *argv)
    assert status == 0, err
    report = json.loads((tmp_path / "out" / "probe_results.json").read_text())
    entry = report["tasks"]["past_present"]
    assert {"bert", "bermo"} <= set(entry) and len(entry["layer_weights"]["weights"]) == 4
    plain = {"roberta": "RoBERTa", "modernbert": "ModernBERT"}[family_id]
    assert report["plain_model"] == plain
    assert f"| Group | Task | {plain} | BERMo |" in (tmp_path / "out" / "probe_results.md").read_text()


def test_pairs_are_encoded_as_the_family_does_without_token_types_where_it_has_none(tmp_path):
    from transformers import TrainingArguments

    from bermo_hf.training import DataArguments, ModelArguments, build_trainer

    family = next(family for family in FAMILIES if family.id == "roberta")
    source = save_plain_checkpoint(tmp_path / "plain", family)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("premise\thypothesis\tlabel\na gripping film\tthe plot is thin\t0\nfine\ta warm story\t1\n")
    data_args = DataArguments(train_file=str(pairs), text_column="premise", text_pair_column="hypothesis")
    trainer = build_trainer(
        ModelArguments(str(source)), data_args, TrainingArguments(str(tmp_path / "out"), report_to="none")
    )
    example = trainer.train_dataset[0]
    assert "token_type_ids" not in example
    tokens = trainer.processing_class.convert_ids_to_tokens(example["input_ids"])
    assert tokens[0] == "<s>" and tokens[-1] == "</s>" and tokens.count("</s>") == 3  # <s> A </s></s> B </s>
    assert tokens[tokens.index("</s>") + 1] == "</s>"
