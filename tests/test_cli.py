"""The `bermo` command end to end on small data: convert, train (and --baseline), inspect, predict, demo, bad input."""

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from bermo_hf.cli import main as bermo

from .test_training import SENTENCES, save_tiny_bert, write_tsv

HUB_READY_FILES = {
    "config.json",
    "configuration_bermo.py",
    "modeling_bermo.py",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "README.md",
    "layer_weights.png",
}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")


def run_bermo(capsys, *argv) -> tuple[int, str, str]:
    status = bermo([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    """Exit status 1 and the error as one line on stderr (progress bars of reading the data aside)."""
    assert status == 1
    assert "Traceback" not in err
    messages = [line for line in err.splitlines() if line.startswith("bermo ")]
    assert len(messages) == 1 and err.rstrip().endswith(messages[0]), err
    for fragment in fragments:
        assert fragment in messages[0]


def assert_no_leftovers(folder: Path) -> None:
    assert not folder.exists()
    assert not list(folder.parent.glob(f".{folder.name}.*"))


def test_convert_writes_a_hub_ready_folder(tiny_bert, tmp_path, capsys):
    out = tmp_path / "bermo-tiny"
    status, stdout, _ = run_bermo(capsys, "convert", tiny_bert, out, "--labels", "neg,pos")
    assert status == 0 and str(out) in stdout
    assert HUB_READY_FILES <= {path.name for path in out.iterdir()}
    assert not list(tmp_path.glob(".bermo-tiny.*"))
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bermo" and config["id2label"] == {"0": "neg", "1": "pos"}
    assert config["auto_map"]["AutoModelForSequenceClassification"] == "modeling_bermo.BermoForSequenceClassification"
    with safe_open(out / "model.safetensors", "pt") as weights:
        assert {"bert.layer_mix.weights", "bert.layer_mix.gamma"} <= set(weights.keys())


def test_convert_for_token_classification(tiny_bert, tmp_path, capsys):
    status, _, _ = run_bermo(
        capsys, "convert", tiny_bert, tmp_path / "ner", "--task", "token-classification", "--num_labels", "5"
    )
    assert status == 0
    config = json.loads((tmp_path / "ner" / "config.json").read_text())
    assert config["architectures"] == ["BermoForTokenClassification"] and len(config["id2label"]) == 5
    assert "pipeline_tag: token-classification" in (tmp_path / "ner" / "README.md").read_text()


@pytest.mark.parametrize(
    "source, extra, fragments",
    [
        (
            "no/such-model-anywhere",
            [],
            ["no/such-model-anywhere is neither a local folder nor a reachable Hub model id"],
        ),
        (None, ["--num_labels", "3", "--labels", "a,b"], ["--num_labels 3 disagrees with the 2 names of --labels"]),
    ],
)
def test_convert_bad_input(tiny_bert, tmp_path, capsys, source, extra, fragments):
    out = tmp_path / "out"
    status, _, err = run_bermo(capsys, "convert", source or tiny_bert, out, *extra)
    assert_one_line_error(status, err, "bermo convert: error:", *fragments)
    assert_no_leftovers(out)


@pytest.fixture(scope="module")
def trained(tiny_bert, sst2_dir, tmp_path_factory) -> Path:
    """A BERMo trained by `bermo train` on a slice of the shared SST-2 files."""
    out = tmp_path_factory.mktemp("runs") / "bermo-sst2"
    status = bermo(
        [
            "train",
            *("--model_name_or_path", str(tiny_bert), "--train_file", str(sst2_dir / "train.tsv")),
            *("--validation_file", str(sst2_dir / "dev.tsv"), "--max_train_samples", "64", "--max_eval_samples", "32"),
            *("--output_dir", str(out), "--num_train_epochs", "2", "--per_device_train_batch_size", "16"),
            *("--learning_rate", "1e-3", "--mix_learning_rate", "0.05", "--disable_tqdm", "true"),
        ]
    )
    assert status == 0
    return out


def test_train_writes_the_best_model_hub_ready_with_metrics(trained, capsys):
    assert HUB_READY_FILES | {"metrics.json"} <= {path.name for path in trained.iterdir()}
    assert not list(trained.parent.glob(".bermo-sst2.*"))
    metrics = json.loads((trained / "metrics.json").read_text())
    assert {"eval_accuracy", "eval_f1", "eval_matthews_correlation", "train_runtime"} <= set(metrics)
    assert metrics["model_type"] == "bermo"
    assert len(metrics["layer_weights"]["weights"]) == 3
    card = (trained / "README.md").read_text()
    assert "- accuracy" in card and "| accuracy |" in card and "`train.tsv`" in card
    checkpoints = list(trained.glob("checkpoint-*"))
    assert len(checkpoints) >= 1
    assert not [path for path in checkpoints if (path / "README.md").exists()]  # the final model's card only


def test_inspect_table_json_and_plot(trained, tmp_path, capsys):
    status, table, _ = run_bermo(capsys, "inspect", trained)
    assert status == 0
    assert table.splitlines()[0].startswith("embeddings") and "#" in table and "expected layer" in table
    status, as_json, _ = run_bermo(capsys, "inspect", trained, "--json", "--plot", tmp_path / "chart.png")
    summary = json.loads(as_json)
    assert status == 0 and summary["depths"] == ["embeddings", "layer 1", "layer 2"]
    assert summary["weights"] == pytest.approx(
        json.loads((trained / "metrics.json").read_text())["layer_weights"]["weights"]
    )
    assert summary["expected_layer"] == pytest.approx(summary["weights"][1] + 2 * summary["weights"][2])
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")


def test_predict_texts_and_file(trained, tmp_path, capsys):
    status, out, _ = run_bermo(capsys, "predict", trained, "a great film", "an awful film")
    rows = [line.split("\t") for line in out.splitlines()]
    assert status == 0 and [row[2] for row in rows] == ["a great film", "an awful film"]
    assert all(row[0] in ("0", "1") and 0 <= float(row[1]) <= 1 for row in rows)
    texts = tmp_path / "texts.txt"
    texts.write_text("first text\n\nsecond text\n")
    status, out, _ = run_bermo(capsys, "predict", trained, "--file", texts, "--json")
    assert status == 0 and [json.loads(line)["text"] for line in out.splitlines()] == ["first text", "second text"]


def test_train_baseline_is_plain_bert(tiny_bert, sst2_dir, tmp_path, capsys):
    out = tmp_path / "bert-sst2"
    status, stdout, _ = run_bermo(
        capsys,
        "train",
        *("--model_name_or_path", tiny_bert, "--train_file", sst2_dir / "train.tsv", "--baseline"),
        *("--validation_file", sst2_dir / "dev.tsv", "--max_train_samples", "32", "--max_eval_samples", "16"),
        *("--output_dir", out, "--max_steps", "2", "--disable_tqdm", "true"),
    )
    assert status == 0 and "BERT baseline" in stdout
    assert json.loads((out / "config.json").read_text())["model_type"] == "bert"
    assert json.loads((out / "metrics.json").read_text())["model_type"] == "bert"


@pytest.mark.parametrize(
    "make_args, fragments",
    [
        (lambda d: ["--train_file", d / "absent.csv"], ["absent.csv: no such file"]),
        (
            lambda d: ["--train_file", write_tsv(d / "t.tsv", SENTENCES), "--label_column", "y"],
            ["no column 'y'", "sentence, label"],
        ),
        (
            lambda d: [
                *("--train_file", write_tsv(d / "t.tsv", SENTENCES)),
                *("--validation_file", write_tsv(d / "v.tsv", [("so so", "meh")])),
            ],
            ["labels absent from the train data: meh"],
        ),
    ],
)
def test_train_bad_input_leaves_the_output_folder_as_it_was(tiny_bert, tmp_path, capsys, make_args, fragments):
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier-run.txt").write_text("kept")
    args = ["train", "--model_name_or_path", tiny_bert, "--output_dir", out, "--overwrite_output_dir"]
    status, _, err = run_bermo(capsys, *args, *make_args(tmp_path))
    assert_one_line_error(status, err, "bermo train: error:", *fragments)
    assert [path.name for path in out.iterdir()] == ["earlier-run.txt"]
    assert not list(tmp_path.glob(".out.*"))


def test_train_bad_input_into_a_new_folder_leaves_no_folder(tiny_bert, tmp_path, capsys):
    out = tmp_path / "new" / "out"
    args = ["train", "--model_name_or_path", tiny_bert, "--output_dir", out, "--train_file", tmp_path / "absent.csv"]
    status, _, err = run_bermo(capsys, *args)
    assert_one_line_error(status, err, "absent.csv: no such file")
    assert not out.exists()


def train_argv(tiny_bert, tmp_path, output_dir, *extra) -> list:
    train = write_tsv(tmp_path / "train.tsv", SENTENCES * 2)
    return [
        *("train", "--model_name_or_path", tiny_bert, "--train_file", train, "--output_dir", output_dir),
        *("--max_steps", "2", "--per_device_train_batch_size", "8", "--disable_tqdm", "true", *extra),
    ]


def test_train_refuses_a_non_empty_output_folder_and_keeps_its_files(tiny_bert, tmp_path, capsys):
    out = tmp_path / "experiments"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "other-run").mkdir()
    (out / "other-run" / "model.safetensors").write_text("not ours")
    status, _, err = run_bermo(capsys, *train_argv(tiny_bert, tmp_path, out))
    assert_one_line_error(status, err, f"{out} already exists and is not empty", "--overwrite_output_dir")
    assert sorted(path.name for path in out.iterdir()) == ["notes.txt", "other-run"]

    status, _, _ = run_bermo(capsys, *train_argv(tiny_bert, tmp_path, out, "--overwrite_output_dir"))
    assert status == 0
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "other-run" / "model.safetensors").read_text() == "not ours"
    assert HUB_READY_FILES | {"metrics.json"} <= {path.name for path in out.iterdir()}
    assert not (out / ".bermo-partial").exists()


def test_output_dir_dot_never_removes_the_working_directory(tiny_bert, tmp_path, capsys, monkeypatch):
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "notes.txt").write_text("my notes")
    monkeypatch.chdir(cwd)
    inode = cwd.stat().st_ino
    status, _, err = run_bermo(capsys, *train_argv(tiny_bert, tmp_path, "."))
    assert_one_line_error(status, err, "already exists and is not empty", "notes.txt")
    status, _, _ = run_bermo(capsys, *train_argv(tiny_bert, tmp_path, ".", "--overwrite_output_dir"))
    assert status == 0
    assert cwd.stat().st_ino == inode and (cwd / "notes.txt").read_text() == "my notes"
    assert (cwd / "model.safetensors").is_file() and (cwd / "train.tsv").exists() is False
    assert sorted(path.name for path in tmp_path.iterdir()) == ["train.tsv", "work"]  # nothing written beside it


def test_overwrite_refuses_to_rotate_away_an_earlier_runs_checkpoints(tiny_bert, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "checkpoint-40").mkdir(parents=True)
    argv = train_argv(tiny_bert, tmp_path, out, "--overwrite_output_dir", "--save_strategy", "steps")
    status, _, err = run_bermo(capsys, *argv, "--save_steps", "1")
    assert_one_line_error(status, err, "holds checkpoints of an earlier run (checkpoint-40)", "resume_from_checkpoint")
    status, _, err = run_bermo(capsys, *train_argv(tiny_bert, tmp_path, out))
    assert_one_line_error(status, err, "not empty (checkpoint-40)", "pass --resume_from_checkpoint last")
    assert [path.name for path in out.iterdir()] == ["checkpoint-40"]


def test_convert_refuses_a_non_empty_folder_and_overwrites_only_its_files(tiny_bert, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    status, _, err = run_bermo(capsys, "convert", tiny_bert, out)
    assert_one_line_error(status, err, "bermo convert: error:", f"{out} already exists and is not empty")
    assert [path.name for path in out.iterdir()] == ["notes.txt"]
    (out / "README.md").write_text("---\nlicense: mit\n---\n\nMy own words about this model.\n")
    status, _, _ = run_bermo(capsys, "convert", tiny_bert, out, "--overwrite_output_dir")
    assert status == 0 and (out / "notes.txt").read_text() == "my notes"
    assert HUB_READY_FILES <= {path.name for path in out.iterdir()}
    card = (out / "README.md").read_text()  # merged, not replaced
    assert "license: mit" in card and "My own words about this model." in card and "<!-- bermo-hf:begin" in card


def test_resume_from_the_last_checkpoint_of_the_output_folder(tmp_path):
    from bermo_hf.checkpoints import resolve_checkpoint_to_resume
    from bermo_hf.errors import BermoUsageError

    for step in (2, 10, 4):
        (tmp_path / "out" / f"checkpoint-{step}").mkdir(parents=True)
    assert resolve_checkpoint_to_resume("last", tmp_path / "out") == str(tmp_path / "out" / "checkpoint-10")
    assert resolve_checkpoint_to_resume(None, tmp_path / "out") is None
    with pytest.raises(BermoUsageError, match="has no checkpoint"):
        resolve_checkpoint_to_resume("last", tmp_path / "elsewhere")


def test_inspect_of_plain_bert_and_predict_without_texts(tiny_bert, capsys):
    status, _, err = run_bermo(capsys, "inspect", tiny_bert)
    assert_one_line_error(status, err, "'bert' checkpoint without a layer mix")
    with pytest.raises(SystemExit):
        bermo(["predict", str(tiny_bert)])


def test_demo_end_to_end_on_a_tiny_bert(tiny_bert, tmp_path, capsys, monkeypatch):
    """The demo's steps, with a tiny BERT standing in for all-MiniLM-L6-v2 (the real run is timed in docs/cli.md)."""
    from bermo_hf import demo

    monkeypatch.setattr(demo, "minilm_l6_path", lambda: str(tiny_bert))
    out = tmp_path / "demo"
    status, stdout, _ = run_bermo(capsys, "demo", "--output_dir", out, "--num_train_epochs", "1")
    assert status == 0
    assert "dev accuracy:" in stdout and "loaded as transformers_modules." in stdout
    assert sum(line.strip().startswith(("positive", "negative")) for line in stdout.splitlines()) == 4
    assert HUB_READY_FILES | {"metrics.json"} <= {path.name for path in out.iterdir()}
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in (out / "README.md").read_text()


def numbered_tsv(path: Path) -> Path:
    return write_tsv(path, [(text, "1" if label == "pos" else "0") for text, label in SENTENCES * 2])


def test_train_keeps_the_class_names_of_a_converted_checkpoint(tiny_bert, tmp_path, capsys):
    assert run_bermo(capsys, "convert", tiny_bert, tmp_path / "named", "--labels", "neg,pos")[0] == 0
    out = tmp_path / "out"
    train = numbered_tsv(tmp_path / "numbered.tsv")
    status, _, _ = run_bermo(
        capsys,
        *("train", "--model_name_or_path", tmp_path / "named", "--train_file", train, "--output_dir", out),
        *("--max_steps", "1", "--disable_tqdm", "true"),
    )
    assert status == 0
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}
    status, predicted, _ = run_bermo(capsys, "predict", out, "a great film")
    assert status == 0 and predicted.split("\t")[0] in ("neg", "pos")


def test_label_names_set_the_class_names(tiny_bert, tmp_path, capsys):
    train = numbered_tsv(tmp_path / "numbered.tsv")
    argv = ["train", "--model_name_or_path", tiny_bert, "--train_file", train, "--max_steps", "1"]
    status, _, _ = run_bermo(capsys, *argv, "--output_dir", tmp_path / "out", "--label_names", "bad, good")
    assert status == 0
    assert json.loads((tmp_path / "out" / "config.json").read_text())["id2label"] == {"0": "bad", "1": "good"}
    status, _, err = run_bermo(capsys, *argv, "--output_dir", tmp_path / "out2", "--label_names", "a,b,c")
    assert_one_line_error(status, err, "--label_names 'a,b,c' must name each of the train data's 2 classes (0, 1)")
    assert not (tmp_path / "out2").exists()


def test_names_of_a_checkpoint_that_do_not_fit_the_data_are_reported(tiny_bert, tmp_path, capsys, caplog):
    from bermo_hf.training import LabelSpace, name_classes

    space = LabelSpace(["bad", "good"], False, {"bad": 0, "good": 1})
    config = type("Config", (), {"id2label": {0: "neg", 1: "pos"}})()
    with caplog.at_level("WARNING", logger="bermo_hf.training"):
        assert name_classes(space, config) == space
    (record,) = caplog.records
    assert "trained with the classes neg, pos, but the train data's labels are bad, good" in record.getMessage()
    # The same names in another order keep the checkpoint's class ids.
    reordered = name_classes(LabelSpace(["neg", "pos"], False, {"neg": 0, "pos": 1}), type(config)())
    assert reordered.labels == ["neg", "pos"]
    config.id2label = {0: "pos", 1: "neg"}
    swapped = name_classes(LabelSpace(["neg", "pos"], False, {"neg": 0, "pos": 1}), config)
    assert swapped.labels == ["pos", "neg"] and swapped.encode(["pos", "neg"]) == [0, 1]


COMMANDS_READING_A_CHECKPOINT = {
    "train": ["train", "--model_name_or_path", "{tiny}", "--train_file", "{train}", "--output_dir", "{tmp}/out"]
    + ["--max_steps", "2", "--report_to", "none"],
    "prune": ["prune", "--model_name_or_path", "{tiny}", "--train_file", "{train}", "--output_dir", "{tmp}/out"]
    + ["--method", "magnitude", "--final_sparsity", "0.5", "--warmup_steps_pruning", "1", "--max_steps", "3"]
    + ["--report_to", "none"],
    "probe-frozen": ["probe", "--model_name_or_path", "{tiny}", "--data_dir", "{probing}", "--output_dir", "{tmp}/out"]
    + ["--mode", "frozen", "--probe_c", "1.0", "--probe_max_iter", "100"],
    "probe-finetune": ["probe", "--model_name_or_path", "{tiny}", "--data_dir", "{probing}", "--output_dir"]
    + ["{tmp}/out", "--mode", "finetune", "--num_train_epochs", "1", "--max_train_samples", "16"]
    + ["--max_eval_samples", "8"],
    "convert": ["convert", "{tiny}", "{tmp}/out"],
    "inspect": ["inspect", "{trained}"],
    "predict": ["predict", "{trained}", "a fine film"],
    "export-onnx": ["export", "{trained}", "{tmp}/out", "--onnx"],
}


@pytest.mark.parametrize("command", COMMANDS_READING_A_CHECKPOINT)
def test_each_command_reads_the_checkpoints_configuration_once(
    command, trained, tiny_bert, tmp_path, capsys, config_reads
):
    from .test_probing import FIXTURE_TASKS, write_senteval_file

    probing = tmp_path / "probing"
    probing.mkdir()
    for task in FIXTURE_TASKS[:2]:
        write_senteval_file(probing / f"{task}.txt", task)
    paths = {"trained": trained, "tiny": tiny_bert, "tmp": tmp_path, "probing": probing}
    paths["train"] = write_tsv(tmp_path / "train.tsv", SENTENCES)
    argv = [part.format(**paths) for part in COMMANDS_READING_A_CHECKPOINT[command]]
    config_reads.clear()
    status, _, err = run_bermo(capsys, *argv)
    assert status == 0, err
    checkpoint = Path(argv[argv.index("--model_name_or_path") + 1] if "--model_name_or_path" in argv else argv[1])
    assert config_reads.count(str(checkpoint / "config.json")) == 1, config_reads
