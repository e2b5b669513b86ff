"""SentEval probing: reading the files, the grouped report, and `bermo probe` end to end in both modes.

The data are small fixture files in the SentEval format written here; the checkpoint is a tiny random BERT saved with
a WordPiece tokenizer built from a vocabulary written here too."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, BertConfig, BertModel, BertTokenizer

from bermo_hf import BermoModel
from bermo_hf.commands import probe as probe_command
from bermo_hf.layer_weights import LayerWeights
from bermo_hf.modeling_bermo import family_of
from bermo_hf.probing import (
    GROUPS,
    HEATMAP_PNG,
    RESULTS_JSON,
    RESULTS_MARKDOWN,
    ProbingArguments,
    ProbingError,
    cached_depth_features,
    checkpoint_fingerprint,
    extract_depth_features,
    fit_depth_probe,
    fit_mix_probe,
    format_markdown,
    load_senteval,
    read_senteval_file,
    run_probing,
    summarize,
)
from bermo_hf.probing.runs import load_checkpoint_config

from .conftest import REPO_ROOT, _missing, tiny_config_kwargs

SUBJECTS = {"NN": ["man", "dog", "cat", "woman"], "NNS": ["men", "dogs", "cats", "women"]}
VERBS = {"PRES": ["sees", "likes", "finds"], "PAST": ["saw", "liked", "found"]}
OBJECTS = ["the house", "a red car", "the big tree", "a small boat", "the old city", "a blue bird"]
EXTRA = ["today", "again", "quickly", "at night", "in the park"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# The fixture tasks: one surface, one syntactic and two semantic ones.
FIXTURE_TASKS = ("sentence_length", "bigram_shift", "past_present", "subj_number")
SPLIT_SIZES = {"tr": 32, "va": 12, "te": 12}


def _example(task: str, rng: random.Random) -> tuple[str, str]:
    number, tense = rng.choice(list(SUBJECTS)), rng.choice(list(VERBS))
    words = ["the", rng.choice(SUBJECTS[number]), rng.choice(VERBS[tense]), *rng.choice(OBJECTS).split()]
    words += rng.choice(EXTRA).split() if rng.random() < 0.5 else []
    if task == "sentence_length":
        return str(len(words) // 3), " ".join(words)
    if task == "bigram_shift":
        inverted = rng.random() < 0.5
        if inverted:
            position = rng.randrange(len(words) - 1)
            words[position], words[position + 1] = words[position + 1], words[position]
        return ("I" if inverted else "O"), " ".join(words)
    return (tense if task == "past_present" else number), " ".join(words)


@pytest.fixture(autouse=True)
def one_thread():
    """One thread for torch and BLAS: on a small, shared machine extra threads only wait for each other."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)


def write_senteval_file(path, task: str, seed: int = 0) -> None:
    """A SentEval-format file: `split<TAB>label<TAB>sentence` lines, SPLIT_SIZES of each split."""
    rng = random.Random(f"{task}-{seed}")
    lines = ["\t".join((split, *_example(task, rng))) for split, size in SPLIT_SIZES.items() for _ in range(size)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "probing"
    folder.mkdir()
    for task in FIXTURE_TASKS:
        write_senteval_file(folder / f"{task}.txt", task)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A tiny random BERT folder (2 layers, hidden 32) with a WordPiece tokenizer covering the fixture words."""
    phrases = [*SUBJECTS["NN"], *SUBJECTS["NNS"], *VERBS["PRES"], *VERBS["PAST"], *OBJECTS, *EXTRA]
    words = sorted({word for phrase in phrases for word in phrase.split()})
    vocab = {token: index for index, token in enumerate(SPECIAL + words)}
    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    BertModel(BertConfig(**tiny_config_kwargs(vocab_size=len(vocab)))).save_pretrained(folder)
    BertTokenizer(vocab=vocab).save_pretrained(folder)
    return str(folder)


def _cli(*args) -> int:
    return probe_command.main([str(arg) for arg in args])


# --------------------------------------------------------------------------------------------------- reading


def test_read_senteval_file_splits_labels_and_sentences(tmp_path):
    path = tmp_path / "past_present.txt"
    # As SentEval: blank lines are skipped, fields between the label and the last one (the sentence) are ignored.
    path.write_text(
        "tr\tPAST\tHe saw it .\n\nva\tPRES\tsees\tShe sees it .\ntr\tPRES\tThey see it .\nte\tPAST\tI ran .\n"
    )
    examples = read_senteval_file(path)
    assert examples == {
        "tr": [("PAST", "He saw it ."), ("PRES", "They see it .")],
        "va": [("PRES", "She sees it .")],
        "te": [("PAST", "I ran .")],
    }


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ("tr\tPAST", "expected split<TAB>label<TAB>sentence, found 2"),
        ("dev\tPAST\tHe saw it .", "unknown split 'dev'"),
        ("tr\t\tHe saw it .", "empty label"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, reason):
    path = tmp_path / "past_present.txt"
    path.write_text(f"tr\tPAST\tHe saw it .\nva\tPRES\tShe sees it .\n{bad_line}\nte\tPAST\tI ran .\n")
    with pytest.raises(ProbingError, match="line 3") as error:
        read_senteval_file(path)
    assert str(path) in str(error.value) and reason in str(error.value)


def test_missing_split_and_missing_file_are_named(tmp_path):
    path = tmp_path / "tree_depth.txt"
    path.write_text("tr\t5\tA sentence .\nva\t6\tAnother one .\n")
    with pytest.raises(ProbingError, match=r"tree_depth\.txt: no 'te' line"):
        read_senteval_file(path)
    with pytest.raises(ProbingError, match=r"odd_man_out\.txt: no such file"):
        load_senteval(tmp_path, tasks=["OddManOut"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProbingError, match="holds no SentEval probing file"):
        load_senteval(tmp_path / "empty")


def test_load_senteval_orders_tasks_and_subsamples(data_dir):
    tasks = load_senteval(data_dir, max_train_samples=10, max_eval_samples=5, seed=1)
    assert [data.task.name for data in tasks] == list(FIXTURE_TASKS)
    tense = tasks[2]
    assert tense.label_names == ["PAST", "PRES"] and tense.task.group == "semantic"
    assert {split: len(s) for split, s in tense.sentences.items()} == {"tr": 10, "va": 5, "te": 5}
    full = read_senteval_file(data_dir / "past_present.txt")["tr"]
    assert all(
        (tense.label_names[y], s) in full for y, s in zip(tense.labels["tr"], tense.sentences["tr"], strict=True)
    )
    assert [data.task.name for data in load_senteval(data_dir, tasks=["Tense", "SentLen", "bigramshift"])] == [
        "sentence_length",
        "bigram_shift",
        "past_present",
    ]


# -------------------------------------------------------------------------------------------------- reporting


def test_summarize_groups_tasks_and_averages_each_group():
    results = {
        "past_present": {"bert": 80.0, "bermo": 84.0, "layer_weights": LayerWeights([0.5, 0.25, 0.25], 2.0).to_dict()},
        "sentence_length": {"bert": 90.0, "bermo": 89.0},
        "subj_number": {"bert": 70.0, "bermo": 75.0, "layer_weights": LayerWeights([0.0, 0.0, 1.0], 1.0).to_dict()},
        "bigram_shift": {"bert": 60.0, "bermo": 60.5},
    }
    report = summarize(results, "finetune")
    assert list(report["tasks"]) == ["sentence_length", "bigram_shift", "past_present", "subj_number"]
    assert list(report["groups"]) == list(GROUPS)
    semantic = report["groups"]["semantic"]
    assert semantic["tasks"] == ["past_present", "subj_number"]
    assert semantic["bert"] == pytest.approx(75.0) and semantic["bermo"] == pytest.approx(79.5)
    assert semantic["difference"] == pytest.approx(4.5)
    assert report["groups"]["surface"]["difference"] == pytest.approx(-1.0)
    assert report["overall"]["difference"] == pytest.approx((4 - 1 + 5 + 0.5) / 4)
    markdown = format_markdown(report)
    assert "| **semantic average** | | **75.00** | **79.50** | **+4.50** | |" in markdown
    assert "| syntactic | BShift | 60.00 | 60.50 | +0.50 |  |" in markdown
    assert "| semantic | Tense | 80.00 | 84.00 | +4.00 | 0.75 |" in markdown
    assert "| Tense | 0.500 | 0.250 | 0.250 | 2.000 | 0.75 |" in markdown


@pytest.mark.parametrize(
    ("model_type", "family"), [("bert", "BERT"), ("mpnet", "MPNet"), ("bermo-mpnet", "MPNet"), ("roberta", "RoBERTa")]
)
def test_the_report_names_the_plain_model_by_the_checkpoints_family(model_type, family, tmp_path):
    AutoConfig.for_model(model_type).save_pretrained(tmp_path)
    assert family_of(load_checkpoint_config(str(tmp_path)).model_type).name == family
    report = summarize({"past_present": {"bert": 60.0, "bermo": 62.0}}, "finetune", plain_model=family)
    markdown = format_markdown(report)
    assert f"| Group | Task | {family} | BERMo |" in markdown and f"; {family} and BERMo share every" in markdown
    del report["plain_model"]  # a report of an earlier version names no family
    assert "| Group | Task | plain model | BERMo |" in format_markdown(report)


def test_a_checkpoint_of_no_supported_family_is_refused_in_one_line(tmp_path):
    AutoConfig.for_model("gpt2").save_pretrained(tmp_path)
    with pytest.raises(ProbingError, match="model type 'gpt2' is not supported by BERMo"):
        load_checkpoint_config(str(tmp_path))


# ----------------------------------------------------------------------------------------------------- probes


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_depth_features_of_a_batch_are_each_sentence_alone(tiny_bert, pooling):
    model, tokenizer = BertModel.from_pretrained(tiny_bert), BertTokenizer.from_pretrained(tiny_bert)
    sentences = ["the men saw the house again", "the cat sees a red car", "the dog", "the women liked the big tree"]
    batched = extract_depth_features(model, tokenizer, sentences, pooling=pooling, batch_size=3)
    assert batched.shape == (4, 3, 32)
    for sentence, features in zip(sentences, batched, strict=True):
        with torch.no_grad():
            states = torch.stack(model(**tokenizer(sentence, return_tensors="pt"), output_hidden_states=True)[2], 1)
        expected = states[0, :, 0] if pooling == "first" else states[0].mean(dim=1)
        torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)


def test_bermo_checkpoint_gives_bert_depth_features(tiny_bert, tmp_path):
    tokenizer = BertTokenizer.from_pretrained(tiny_bert)
    bermo = BermoModel.from_pretrained(tiny_bert)
    bermo.save_pretrained(tmp_path)
    sentences = ["the men saw the house", "the cat"]
    expected = extract_depth_features(BertModel.from_pretrained(tiny_bert), tokenizer, sentences, pooling="mean")
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, BermoModel)
    torch.testing.assert_close(extract_depth_features(loaded, tokenizer, sentences, pooling="mean"), expected)


def test_mix_probe_on_one_depth_is_scikit_learn_logistic_regression():
    rng = np.random.default_rng(0)
    labels = {split: rng.integers(0, 3, size=n) for split, n in (("tr", 60), ("va", 30), ("te", 30))}
    centers = rng.normal(size=(3, 8))
    features = {split: centers[y] + 1.5 * rng.normal(size=(len(y), 8)) for split, y in labels.items()}
    reference = fit_depth_probe(features, labels, [0.5], max_iter=1000, seed=0)
    as_depths = {split: torch.tensor(x, dtype=torch.float32)[:, None] for split, x in features.items()}
    mix = fit_mix_probe(as_depths, labels, num_labels=3, c_values=[0.5], max_iter=1000, seed=0)
    assert mix.weights == [1.0]
    assert mix.val_accuracy == pytest.approx(reference.val_accuracy)
    assert mix.test_accuracy == pytest.approx(reference.test_accuracy)


# -------------------------------------------------------------------------------------------------- end to end


def test_frozen_mode_end_to_end_with_cached_features(tiny_bert, data_dir, tmp_path):
    output_dir = tmp_path / "frozen"
    flags = ["--model_name_or_path", tiny_bert, "--data_dir", data_dir, "--output_dir", output_dir]
    flags += ["--mode", "frozen", "--pooling", "mean", "--probe_c", "1.0", "--probe_max_iter", "200"]
    assert _cli(*flags) == 0
    report = json.loads((output_dir / RESULTS_JSON).read_text())
    assert (output_dir / HEATMAP_PNG).read_bytes().startswith(b"\x89PNG")
    assert "probe on each depth" in (output_dir / RESULTS_MARKDOWN).read_text()
    assert list(report["tasks"]) == list(FIXTURE_TASKS)
    assert report["groups"]["semantic"]["tasks"] == ["past_present", "subj_number"]
    for entry in report["tasks"].values():
        assert len(entry["depth_accuracy"]) == 3  # embeddings + 2 layers
        assert entry["bert"] == entry["depth_accuracy"][-1]
        assert all(0 <= accuracy <= 100 for accuracy in entry["depth_accuracy"] + [entry["bermo"]])
        assert sum(entry["layer_weights"]["weights"]) == pytest.approx(1.0)
        assert 0 <= entry["layer_weights"]["expected_layer"] <= 2
        assert entry["difference"] == pytest.approx(entry["bermo"] - entry["bert"])
    cache_files = sorted((output_dir / "feature_cache").glob("*.pt"))
    assert len(cache_files) == len(FIXTURE_TASKS)

    # A second run reads every feature from the cache: the model is never loaded, and the figures are the same.
    args = ProbingArguments(
        model_name_or_path=tiny_bert,
        data_dir=str(data_dir),
        mode="frozen",
        pooling="mean",
        probe_c=[1.0],
        probe_max_iter=200,
        cache_dir=str(output_dir / "feature_cache"),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("transformers.AutoModel.from_pretrained", _fail)
        again = run_probing(args)
    assert {name: entry["depth_accuracy"] for name, entry in again["tasks"].items()} == {
        name: entry["depth_accuracy"] for name, entry in report["tasks"].items()
    }


def test_a_failed_cache_write_removes_only_its_own_staging_file(tiny_bert, data_dir, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    (cache_dir / "notes.txt").write_text("the user's")
    (cache_dir / "other_task-first-0123.pt").write_bytes(b"an earlier run's features")
    before = {path.name: path.read_bytes() for path in cache_dir.iterdir()}
    task = load_senteval(data_dir, tasks=["past_present"])[0]

    def load_model():
        return AutoModel.from_pretrained(tiny_bert), BertTokenizer.from_pretrained(tiny_bert)

    def save_half_then_fail(obj, path):
        Path(path).write_bytes(b"half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        cached_depth_features(task, load_model, checkpoint_fingerprint(tiny_bert), cache_dir)
    assert {path.name: path.read_bytes() for path in cache_dir.iterdir()} == before

    monkeypatch.undo()
    features = cached_depth_features(task, load_model, checkpoint_fingerprint(tiny_bert), cache_dir)
    written = set(path.name for path in cache_dir.iterdir()) - set(before)
    assert len(written) == 1 and written.pop().startswith("past_present-first-")
    assert set(features) == {"tr", "va", "te"}
    assert {name: (cache_dir / name).read_bytes() for name in before} == before


def _fail(*args, **kwargs):
    raise AssertionError("the model was loaded although every feature is cached")


def test_finetune_mode_end_to_end(tiny_bert, data_dir, tmp_path, capsys):
    output_dir = tmp_path / "finetune"
    flags = ["--model_name_or_path", tiny_bert, "--data_dir", data_dir, "--output_dir", output_dir]
    flags += ["--tasks", "past_present", "subj_number", "bigram_shift", "--num_train_epochs", "2"]
    flags += ["--batch_size", "16", "--max_train_samples", "24", "--max_eval_samples", "8"]
    assert _cli(*flags) == 0
    report = json.loads((output_dir / RESULTS_JSON).read_text())
    assert (output_dir / HEATMAP_PNG).is_file()
    assert list(report["tasks"]) == ["bigram_shift", "past_present", "subj_number"]
    assert list(report["groups"]) == ["syntactic", "semantic"]
    for entry in report["tasks"].values():
        assert entry["num_examples"] == {"tr": 24, "va": 8, "te": 8}
        assert {"bert", "bermo", "bert_val", "bermo_val"} <= set(entry)
        mix = entry["layer_weights"]
        assert mix["depths"] == ["embeddings", "layer 1", "layer 2"] and sum(mix["weights"]) == pytest.approx(1.0)
        assert mix["weights"] != pytest.approx([1 / 3] * 3)  # the mix was trained
        assert 0 <= mix["expected_layer"] <= 2
    semantic = report["groups"]["semantic"]
    assert semantic["bermo"] == pytest.approx(
        (report["tasks"]["past_present"]["bermo"] + report["tasks"]["subj_number"]["bermo"]) / 2
    )
    printed = capsys.readouterr().out
    assert "**semantic average**" in printed and "BERMo's learned layer weights" in printed
    assert report["plain_model"] == "BERT" and "| Group | Task | BERT | BERMo |" in printed


def test_cli_reports_a_malformed_file_in_one_line_and_writes_nothing(tiny_bert, data_dir, tmp_path, capsys):
    lines = (data_dir / "bigram_shift.txt").read_text().splitlines()
    lines[6] = "tr\tO"
    (data_dir / "bigram_shift.txt").write_text("\n".join(lines) + "\n")
    output_dir = tmp_path / "out"
    status = _cli("--model_name_or_path", tiny_bert, "--data_dir", data_dir, "--output_dir", output_dir)
    assert status == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "Traceback" not in error
    assert f"{data_dir / 'bigram_shift.txt'}, line 7:" in error
    assert not output_dir.exists()


def test_cli_reports_a_missing_checkpoint_in_one_line(data_dir, tmp_path, capsys):
    status = _cli("--model_name_or_path", tmp_path / "nowhere", "--data_dir", data_dir, "--tasks", "Tense")
    assert status == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("bermo probe: error:") and "nowhere" in error and error.count("\n") == 0


@pytest.mark.parametrize("c_values", [[1e-6, 1.0], [1.0, 1e-6]])
def test_depth_probe_selects_its_regularization_on_va(c_values):
    # One feature carries the label; C=1e-6 regularizes it away (chance), C=1 finds it, whichever comes first.
    generator = np.random.default_rng(0)
    features, labels = {}, {}
    for split, count in (("tr", 200), ("va", 100), ("te", 100)):
        labels[split] = generator.integers(0, 2, count)
        features[split] = generator.normal(size=(count, 8))
        features[split][:, 3] += 3 * (2 * labels[split] - 1)
    result = fit_depth_probe(features, labels, c_values, max_iter=1000, seed=0)
    assert result.c == 1.0
    assert result.val_accuracy > 90 and result.test_accuracy > 90


# Verbatim lines of the public SentEval files (from ../shared/data/senteval-sample), quirks kept: a sentence that
# opens or closes with a quote, `´` for an apostrophe, `pul ing`, a line of daggers, a non-ASCII letter.
REAL_TREE_DEPTH_LINES = (
    "tr\t10\tWho knew who would be there ?",
    "tr\t9\t\" I 'll see what I can do .",
    "va\t5\tBut for art and romantic good intentions , he 's a sound investment . \"",
    'te\t11\t" I should be able to keep your name out of this .',
    'te\t7\t" You are a good man , Señor , " Roberto said .',
)
REAL_OTHER_LINES = {
    "past_present": ("tr\tPRES\tHe grabbed my arm , pul ing me around one of the arcade games .",),
    "bigram_shift": ("tr\tO\tShe ´ s cool with me .",),
    "obj_number": ('te\tNNS\t† † † " What is next for you ? "',),
}
SENTEVAL_SAMPLE_DIR = REPO_ROOT.parent / "shared" / "data" / "senteval-sample"


def test_real_senteval_lines_are_read_verbatim(tmp_path):
    path = tmp_path / "tree_depth.txt"
    path.write_bytes(("\n".join(REAL_TREE_DEPTH_LINES) + "\n").encode("utf-8"))
    examples = read_senteval_file(path)
    assert examples == {
        split: [tuple(line.split("\t")[1:]) for line in REAL_TREE_DEPTH_LINES if line.startswith(split)]
        for split in ("tr", "va", "te")
    }
    (data,) = load_senteval(tmp_path)
    # depth labels sort as numbers, not as text ("11" after "9")
    assert data.label_names == ["5", "7", "9", "10", "11"] and data.labels["te"] == [4, 1]
    assert data.sentences["te"][1] == '" You are a good man , Señor , " Roberto said .'
    for task, lines in REAL_OTHER_LINES.items():
        ((split, label, sentence),) = (line.split("\t") for line in lines)
        rows = read_senteval_file(_with_other_splits(tmp_path / f"{task}.txt", lines))
        assert rows[split][0] == (label, sentence)


def _with_other_splits(path, lines):
    """`lines` plus one line of each split they lack (a file must hold tr, va and te), written as UTF-8."""
    present = {line.split("\t")[0] for line in lines}
    filler = [f"{split}\tX\tA filler sentence ." for split in ("tr", "va", "te") if split not in present]
    path.write_text("\n".join([*lines, *filler]) + "\n", encoding="utf-8")
    return path


def test_the_real_senteval_sample_reads_as_it_is():
    if not SENTEVAL_SAMPLE_DIR.is_dir():
        _missing(f"the SentEval sample ({SENTEVAL_SAMPLE_DIR})")
    tasks = load_senteval(SENTEVAL_SAMPLE_DIR)
    assert [data.task.name for data in tasks] == [
        "tree_depth", "bigram_shift", "past_present", "subj_number", "obj_number", "odd_man_out",
        "coordination_inversion",
    ]  # fmt: skip
    for data in tasks:
        lines = data.path.read_text(encoding="utf-8").splitlines()
        assert {split: len(s) for split, s in data.sentences.items()} == {
            split: sum(line.startswith(f"{split}\t") for line in lines) for split in ("tr", "va", "te")
        }
        assert data.sentences["tr"][0] == lines[0].split("\t")[2]
        assert data.num_labels == (7 if data.task.name == "tree_depth" else 2)


def test_a_non_empty_output_dir_is_refused_and_with_overwrite_only_the_reports_files_are_replaced(
    tiny_bert, data_dir, tmp_path, capsys
):
    from bermo_hf.probing import write_outputs

    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "notes.txt").write_text("mine")
    (output_dir / RESULTS_JSON).write_text("an earlier run's results")
    status = _cli("--model_name_or_path", tiny_bert, "--data_dir", data_dir, "--output_dir", output_dir)
    assert status == 1 and "--overwrite_output_dir" in capsys.readouterr().err
    assert (output_dir / RESULTS_JSON).read_text() == "an earlier run's results"

    report = summarize({"past_present": {"bert": 60.0, "bermo": 62.0}}, "frozen")
    written = write_outputs(report, output_dir)
    assert set(written) == {RESULTS_JSON, RESULTS_MARKDOWN}  # no heat-map without layer weights or depth accuracy
    assert json.loads((output_dir / RESULTS_JSON).read_text())["tasks"]["past_present"]["difference"] == 2.0
    assert (output_dir / "notes.txt").read_text() == "mine"
    assert sorted(path.name for path in output_dir.iterdir()) == sorted(["notes.txt", RESULTS_JSON, RESULTS_MARKDOWN])


def test_an_interrupted_finetune_run_resumes_to_the_report_of_an_uninterrupted_one(
    tiny_bert, data_dir, tmp_path, monkeypatch, capsys
):
    from bermo_hf.probing import runs

    flags = ["--model_name_or_path", tiny_bert, "--data_dir", data_dir, "--tasks", "past_present", "bigram_shift"]
    flags += ["--num_train_epochs", "1", "--batch_size", "16", "--max_train_samples", "16", "--max_eval_samples", "8"]
    assert _cli(*flags, "--output_dir", tmp_path / "whole") == 0
    whole = json.loads((tmp_path / "whole" / RESULTS_JSON).read_text())

    fine_tunings = []
    finetune_task = runs.finetune_task

    def interrupted_at_the_third(data, *args, **kwargs):
        fine_tunings.append(data.task.name)
        if len(fine_tunings) == 3:
            raise KeyboardInterrupt
        return finetune_task(data, *args, **kwargs)

    monkeypatch.setattr(runs, "finetune_task", interrupted_at_the_third)
    output_dir = tmp_path / "resumed"
    assert _cli(*flags, "--output_dir", output_dir) == 130  # as after Ctrl-C
    message = f"interrupted: {output_dir / RESULTS_JSON} holds the 1 task(s) finished; the same command with --resume "
    assert capsys.readouterr().err.strip().endswith(message + "runs the other(s): past_present.")
    partial = json.loads((output_dir / RESULTS_JSON).read_text())
    assert list(partial["tasks"]) == ["bigram_shift"] and partial["pending"] == ["past_present"]
    assert "**Partial report**: 1 task(s) not run yet (past_present)" in (output_dir / RESULTS_MARKDOWN).read_text()
    assert sorted(path.name for path in output_dir.iterdir()) == sorted([RESULTS_JSON, RESULTS_MARKDOWN, HEATMAP_PNG])

    assert _cli(*flags, "--output_dir", output_dir, "--resume") == 0
    assert fine_tunings == ["bigram_shift", "bigram_shift", "past_present", "past_present", "past_present"]
    resumed = json.loads((output_dir / RESULTS_JSON).read_text())
    assert resumed["pending"] == [] and resumed["tasks"] == whole["tasks"]
    assert (resumed["groups"], resumed["overall"]) == (whole["groups"], whole["overall"])
    assert "Partial report" not in (output_dir / RESULTS_MARKDOWN).read_text()

    assert _cli(*flags, "--output_dir", output_dir, "--resume") == 0  # nothing left: no model runs
    assert len(fine_tunings) == 5 and json.loads((output_dir / RESULTS_JSON).read_text())["tasks"] == whole["tasks"]


def test_resuming_part_of_the_tasks_keeps_the_others_pending(tiny_bert, data_dir, tmp_path, monkeypatch, capsys):
    from bermo_hf.probing import runs

    flags = ["--model_name_or_path", tiny_bert, "--data_dir", data_dir, "--output_dir", tmp_path / "out"]
    flags += ["--num_train_epochs", "1", "--batch_size", "16", "--max_train_samples", "16", "--max_eval_samples", "8"]
    fine_tunings = []
    finetune_task = runs.finetune_task

    def interrupted_at(count):
        def fine_tune(data, *args, **kwargs):
            fine_tunings.append(data.task.name)
            if len(fine_tunings) == count:
                raise KeyboardInterrupt
            return finetune_task(data, *args, **kwargs)

        return fine_tune

    monkeypatch.setattr(runs, "finetune_task", interrupted_at(1))
    assert _cli(*flags, "--tasks", "bigram_shift", "past_present", "subj_number") == 130
    assert "interrupted before the first task finished; nothing was written." in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    monkeypatch.setattr(runs, "finetune_task", interrupted_at(4))
    assert _cli(*flags, "--tasks", "bigram_shift", "past_present", "subj_number") == 130
    assert json.loads((tmp_path / "out" / RESULTS_JSON).read_text())["pending"] == ["past_present", "subj_number"]

    monkeypatch.setattr(runs, "finetune_task", interrupted_at(0))
    assert _cli(*flags, "--tasks", "past_present", "--resume") == 0
    report = json.loads((tmp_path / "out" / RESULTS_JSON).read_text())
    assert list(report["tasks"]) == ["bigram_shift", "past_present"] and report["pending"] == ["subj_number"]
    assert "**Partial report**: 1 task(s) not run yet (subj_number)" in capsys.readouterr().out
    assert _cli(*flags, "--tasks", "subj_number", "--resume") == 0
    report = json.loads((tmp_path / "out" / RESULTS_JSON).read_text())
    assert list(report["tasks"]) == ["bigram_shift", "past_present", "subj_number"] and report["pending"] == []
    assert fine_tunings == ["bigram_shift"] * 3 + ["past_present"] * 3 + ["subj_number"] * 2


def test_resume_refuses_other_settings_inputs_or_files_it_did_not_write_and_follows_moved_inputs(
    tiny_bert, data_dir, tmp_path, capsys, monkeypatch
):
    import shutil

    from bermo_hf.probing import runs

    output_dir = tmp_path / "out"
    flags = ["--tasks", "past_present", "--num_train_epochs", "1", "--batch_size", "16", "--max_train_samples", "16"]
    flags += ["--max_eval_samples", "8", "--warmup_steps", "2", "--probe_c", "0.5", "2", "--output_dir", output_dir]
    assert _cli("--model_name_or_path", tiny_bert, "--data_dir", data_dir, *flags) == 0
    made = (output_dir / RESULTS_JSON).read_text()
    monkeypatch.setattr(runs, "run_finetune", _fail)
    capsys.readouterr()

    def resume(*extra, checkpoint=tiny_bert, data=data_dir):
        status = _cli("--model_name_or_path", checkpoint, "--data_dir", data, *flags, "--resume", *extra)
        error = capsys.readouterr().err.strip()
        assert (output_dir / RESULTS_JSON).read_text() == made or status == 0
        return status, error

    # The same checkpoint and files under other paths: the finished task is kept, nothing runs.
    moved_bert, moved_data = shutil.copytree(tiny_bert, tmp_path / "bert-copy"), tmp_path / "data-copy"
    shutil.copytree(data_dir, moved_data)
    assert resume(checkpoint=moved_bert, data=moved_data) == (0, "results written to " + str(output_dir))
    moved = (output_dir / RESULTS_JSON).read_text()
    assert json.loads(moved)["tasks"] == json.loads(made)["tasks"]
    assert json.loads(moved)["settings"]["data_dir"] == str(moved_data)
    made = moved

    status, error = resume("--learning_rate", "1e-3")
    assert status == 1 and error.count("\n") == 0
    assert f"{output_dir / RESULTS_JSON} was made with other settings or inputs (learning_rate=2e-05 there, " in error
    assert error.endswith("0.001 now): resume with the flags and files of that run, or choose another output folder.")

    further_trained = BertModel.from_pretrained(moved_bert)
    with torch.no_grad():
        further_trained.pooler.dense.bias[0] += 0.01
    further_trained.save_pretrained(moved_bert)
    status, error = resume(checkpoint=moved_bert)
    assert status == 1 and f"(the checkpoint: {moved_bert}'s configuration, weights or tokenizer are not" in error

    with (moved_data / "past_present.txt").open("a") as file:
        file.write("te\tPAST\tthe dog saw the house .\n")
    status, error = resume(data=moved_data)
    assert status == 1 and "(the SentEval file of past_present: its content changed since that run)" in error

    report = json.loads(made)
    del report["settings"]["mix_learning_rate"]
    (output_dir / RESULTS_JSON).write_text(json.dumps(report))
    made = (output_dir / RESULTS_JSON).read_text()
    assert "(mix_learning_rate not recorded there, 0.001 now)" in resume()[1]

    del report["inputs"]
    (output_dir / RESULTS_JSON).write_text(json.dumps(report))
    made = (output_dir / RESULTS_JSON).read_text()
    status, error = resume()
    assert status == 1 and "not a report that `bermo probe --resume` can continue" in error
    assert "reports of earlier versions record no input fingerprints" in error

    other = tmp_path / "other"
    other.mkdir()
    (other / RESULTS_MARKDOWN).write_text("someone's notes")
    status = _cli("--model_name_or_path", tiny_bert, "--data_dir", data_dir, "--output_dir", other, "--resume")
    assert status == 1 and f"{other} holds {RESULTS_MARKDOWN} but no {RESULTS_JSON} to resume from" in (
        capsys.readouterr().err
    )
    assert (other / RESULTS_MARKDOWN).read_text() == "someone's notes"

    assert _cli("--model_name_or_path", tiny_bert, "--data_dir", data_dir, "--resume") == 1
    assert "--resume continues the run in --output_dir" in capsys.readouterr().err


def test_file_fingerprint_is_content_small_files_whole_large_ones_sampled(tmp_path, monkeypatch):
    from bermo_hf.probing import features

    monkeypatch.setattr(features, "WHOLE_FILE_LIMIT", 1000)
    monkeypatch.setattr(features, "SAMPLE_SIZE", 10)
    small, large = tmp_path / "small", tmp_path / "large"
    small.write_bytes(bytes(500))
    large.write_bytes(bytes(10_000))
    before = {path: features.file_fingerprint(path) for path in (small, large)}
    copy = tmp_path / "copy"
    copy.write_bytes(bytes(10_000))
    assert features.file_fingerprint(copy) == before[large]  # content, not path or time
    small.write_bytes(bytes(250) + b"\x01" + bytes(249))
    large.write_bytes(bytes(9_995) + b"\x01" + bytes(4))  # in the last sampled block
    assert all(features.file_fingerprint(path) != before[path] for path in (small, large))
    large.write_bytes(bytes(10_001))
    assert features.file_fingerprint(large) != before[large]
