"""The benchmark scripts in `bench/` run end to end on tiny data, so they cannot rot.

A tiny random BERT (with a 20-word tokenizer) and a tiny SST-2-shaped folder stand in for the real checkpoint and
data; each script's `main(argv)` runs a couple of steps for both models, and its JSON, Markdown and PNG are checked.
Nothing here asserts on timings.
"""

import contextlib
import io
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from .conftest import REPO_ROOT, tiny_config_kwargs

sys.path.insert(0, str(REPO_ROOT / "bench"))

import bench_common  # noqa: E402
import convergence  # noqa: E402
import op_profile  # noqa: E402
import overhead  # noqa: E402
import pruning  # noqa: E402
import quantization  # noqa: E402
import stability  # noqa: E402

POSITIVE = ["good", "great", "fine", "nice", "lovely"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring"]
FILLER = ["the", "film", "is", "a", "story", "very", "quite", "plot", "and", "cast"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    """Folder of a tiny random `BertForSequenceClassification` with a word-level BERT tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny_bert")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POSITIVE, *NEGATIVE, *FILLER]
    BertTokenizer(vocab={word: index for index, word in enumerate(words)}).save_pretrained(folder)
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(**tiny_config_kwargs(), num_labels=2)).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_sst2(tmp_path_factory):
    """An SST-2-shaped folder: `train.tsv` (48 rows) and `dev.tsv` (16 rows), header `label<TAB>sentence`."""
    folder = tmp_path_factory.mktemp("tiny_sst2")
    generator = torch.Generator().manual_seed(0)

    def rows(count):
        for index in range(count):
            label = index % 2
            sentiment = (POSITIVE if label else NEGATIVE)[index % 5]
            length = int(torch.randint(2, 8, (), generator=generator))
            filler = [FILLER[int(i)] for i in torch.randint(0, len(FILLER), (length,), generator=generator)]
            quote = ' "' if index == 3 else ""  # a lone double quote, as in the real data, starts no quoted field
            yield f"{label}\t{' '.join(filler[:1] + [sentiment] + filler[1:])}{quote}"

    for name, count in (("train.tsv", 48), ("dev.tsv", 16)):
        (folder / name).write_text("\n".join(["label\tsentence", *rows(count)]) + "\n")
    return folder


def test_build_pair_starts_bert_and_bermo_from_identical_weights(tiny_bert):
    bert, bermo = bench_common.build_pair(tiny_bert, seed=3)
    bermo_state = bermo.state_dict()
    for name, tensor in bert.state_dict().items():
        assert torch.equal(tensor, bermo_state[name]), name
    assert sorted(set(bermo_state) - set(bert.state_dict())) == ["bert.layer_mix.gamma", "bert.layer_mix.weights"]
    for kind, model in (("bert", bert), ("bermo", bermo)):
        alone = bench_common.build_comparable(kind, tiny_bert, seed=3).state_dict()
        assert alone.keys() == model.state_dict().keys()
        assert all(torch.equal(tensor, alone[name]) for name, tensor in model.state_dict().items()), kind


def test_convergence_runs_both_models_and_writes_json_markdown_and_plot(tiny_bert, tiny_sst2, tmp_path, capsys):
    argv = [
        "--model", tiny_bert, "--data_dir", str(tiny_sst2), "--seeds", "0", "1", "--max_steps", "2",
        "--eval_every", "1", "--batch_size", "8", "--name", "tiny",
        "--results_dir", str(tmp_path / "results"), "--figures_dir", str(tmp_path / "figures"),
    ]  # fmt: skip
    assert convergence.main(argv) == 0

    results = json.loads((tmp_path / "results" / "tiny.json").read_text())
    assert results["num_train"] == 48 and results["num_dev"] == 16
    assert {"platform", "cpu", "cpu_count", "torch_threads", "python", "versions"} <= set(results["machine"])
    assert results["machine"]["versions"]["torch"] and results["command"].startswith("python bench/convergence.py")
    assert [(run["model"], run["seed"]) for run in results["runs"]] == [
        (m, s) for s in (0, 1) for m in ("bert", "bermo")
    ]
    for run in results["runs"]:
        assert [point["step"] for point in run["curve"]] == [0, 1, 2]
        assert run["curve"][0]["train_loss"] is None and run["curve"][-1]["train_loss"] > 0
        assert all(0.0 <= point["dev_accuracy"] <= 1.0 for point in run["curve"])
        assert run["best_accuracy"] == max(point["dev_accuracy"] for point in run["curve"])
        assert run["final_accuracy"] == run["curve"][-1]["dev_accuracy"] and run["wall_time_s"] > 0
    layer_weights = results["runs"][1]["layer_weights"]
    assert len(layer_weights["weights"]) == tiny_config_kwargs()["num_hidden_layers"] + 1

    summary = results["summary"]
    assert set(summary["models"]) == {"bert", "bermo"}
    assert summary["target_accuracy"] == pytest.approx(
        0.99 * sum(run["best_accuracy"] for run in results["runs"] if run["model"] == "bert") / 2
    )
    assert {"speedup_mean_curve", "speedup_mean_over_seeds", "bermo_layer_weights_mean"} <= set(summary)
    figure = tmp_path / "figures" / "tiny.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (tmp_path / "results" / "tiny.md").read_text()
    assert "| BERT |" in markdown and "| BERMo |" in markdown and "1.67x" in markdown
    assert "[BERMo seed 1] step     2/2" in capsys.readouterr().out

    # --report_only redraws the tables and the figure from the recorded runs, training nothing
    figure.unlink()
    (tmp_path / "results" / "tiny.md").unlink()
    capsys.readouterr()
    assert convergence.main([*argv, "--report_only"]) == 0
    assert "[BERT seed 0] step" not in capsys.readouterr().out
    assert json.loads((tmp_path / "results" / "tiny.json").read_text())["summary"] == results["summary"]
    assert (tmp_path / "results" / "tiny.md").read_text() == markdown and figure.is_file()
    with pytest.raises(SystemExit, match="--report_only: no runs are recorded in .*nothing.json"):
        convergence.main([*argv, "--report_only", "--name", "nothing"])

    # finishing a benchmark in parts: runs with the same settings are taken from earlier results, not retrained
    argv += ["--name", "again", "--reuse", str(tmp_path / "results" / "tiny.json")]
    assert convergence.main(argv) == 0
    again = json.loads((tmp_path / "results" / "again.json").read_text())
    assert [run.pop("reused_from") for run in again["runs"]] == [str(tmp_path / "results" / "tiny.json")] * 4
    assert again["runs"] == results["runs"] and again["summary"] == results["summary"]

    # a rerun under the same name goes on from what is recorded there, and never overwrites runs of other settings
    recorded = tmp_path / "results" / "again.json"
    payload = json.loads(recorded.read_text())
    payload["runs"] = payload["runs"][:3]  # as if stopped during the last run
    recorded.write_text(json.dumps(payload))
    capsys.readouterr()
    assert convergence.main(argv) == 0
    assert capsys.readouterr().out.count("recorded in") == 3
    resumed = json.loads(recorded.read_text())
    assert resumed["runs"][:3] == payload["runs"] and resumed["runs"][3]["seed"] == 1
    with pytest.raises(SystemExit, match=r"again.json holds runs with other settings \(learning_rate\)"):
        convergence.main([*argv, "--learning_rate", "1e-3"])
    assert json.loads(recorded.read_text()) == resumed

    # BERMo's mix learning rate leaves BERT's runs reusable and BERMo's not
    argv += ["--name", "mix_lr", "--mix_learning_rate", "0.01"]
    assert convergence.main(argv) == 0
    mix_lr = json.loads((tmp_path / "results" / "mix_lr.json").read_text())
    assert mix_lr["settings"]["mix_learning_rate"] == 0.01
    assert [("reused_from" in run, run.get("mix_learning_rate")) for run in mix_lr["runs"]] == [
        (True, None), (False, 0.01), (True, None), (False, 0.01)
    ]  # fmt: skip

    # so does the mix's initialization: the BERMo runs of mix_lr are not taken for layer_mix_init="last"
    argv += ["--name", "init_last", "--layer_mix_init", "last", "--reuse", str(tmp_path / "results" / "mix_lr.json")]
    assert convergence.main(argv) == 0
    init_last = json.loads((tmp_path / "results" / "init_last.json").read_text())
    assert init_last["settings"]["layer_mix_init"] == "last"
    assert [("reused_from" in run, run.get("layer_mix_init")) for run in init_last["runs"]] == [
        (True, None), (False, "last"), (True, None), (False, "last")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max_steps", "0"], "--max_steps and --eval_every must be positive"),
        (["--mix_learning_rate=-1e-3"], "--learning_rate and --mix_learning_rate must be positive"),
    ],
)
def test_convergence_refuses_non_positive_settings(flags, message, capsys):
    with pytest.raises(SystemExit):
        convergence.parse_args(flags)
    assert message in capsys.readouterr().err


def test_steps_to_target_and_speedup_are_read_off_the_curves():
    def run(model, seed, accuracies):
        curve = [{"step": 10 * i, "dev_accuracy": a, "train_loss": None} for i, a in enumerate(accuracies)]
        result = {
            "model": model, "seed": seed, "curve": curve, "best_accuracy": max(accuracies),
            "final_accuracy": accuracies[-1], "wall_time_s": 1.0,
        }  # fmt: skip
        if model == "bermo":
            result["layer_weights"] = {"weights": [0.25, 0.75], "gamma": 1.0 + seed}
        return result

    runs = [
        run("bert", 0, [0.5, 0.6, 0.7, 0.8, 0.9]),
        run("bermo", 0, [0.5, 0.9, 0.9, 0.9, 0.9]),
        run("bert", 1, [0.5, 0.7, 0.8, 0.9, 0.9]),
        run("bermo", 1, [0.5, 0.6, 0.8, 0.8, 0.8]),
    ]
    summary = convergence.summarize(runs, target_fraction=1.0)
    assert summary["target_accuracy"] == pytest.approx(0.9)
    assert summary["models"]["bert"]["steps_to_target_per_seed"] == {0: 40, 1: 30}
    assert summary["models"]["bermo"]["steps_to_target_per_seed"] == {0: 10, 1: None}
    assert summary["models"]["bermo"]["steps_to_target_mean_over_seeds"] is None
    assert summary["speedup_mean_over_seeds"] is None
    assert summary["models"]["bert"]["steps_to_target_of_mean_curve"] == 40
    assert summary["models"]["bermo"]["steps_to_target_of_mean_curve"] is None
    assert summary["bermo_layer_weights_mean"] == {"weights": [0.25, 0.75], "gamma": 1.5}

    summary = convergence.summarize(runs, target_fraction=0.8 / 0.9)
    assert summary["speedup_mean_curve"] == pytest.approx(30 / 20)
    assert summary["speedup_mean_over_seeds"] == pytest.approx(((30 + 20) / 2) / ((10 + 20) / 2))


def _run_in_process(command):
    """Stands in for `overhead.run_memory_child`: runs the child's `main` here rather than in a fresh process (that
    would cost seconds of imports), checking the child's command line and the JSON it prints."""
    assert command[0] == sys.executable and command[1].endswith("overhead.py")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert overhead.main(command[2:]) == 0
    return json.loads(stdout.getvalue().strip().splitlines()[-1])


def test_overhead_times_both_models_and_measures_memory(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setattr(overhead, "run_memory_child", _run_in_process)
    output = tmp_path / "overhead.json"
    argv = [
        "--sizes", tiny_bert, "--device", "cpu", "--batch_size", "2", "--seq_len", "8", "--warmup", "1",
        "--train_repeats", "2", "--inference_repeats", "2", "--memory_repeats", "1", "--clock", "cpu",
        "--output", str(output),
    ]  # fmt: skip
    assert overhead.main(argv) == 0

    results = json.loads(output.read_text())
    assert (
        results["device"] == "cpu" and results["settings"]["batch_size"] == 2 and results["settings"]["clock"] == "cpu"
    )
    (result,) = results["results"]
    assert result["layers"] == 2 and result["hidden"] == 32 and result["family"] == "BERT"
    assert result["parameters"]["bermo"] == result["parameters"]["plain"] + result["layers"] + 2
    for measurement in ("train_step", "inference"):
        report = result[measurement]
        for model in ("plain", "bermo"):
            assert (
                report[model]["n"] == 2 and 0 < report[model]["min"] <= report[model]["median"] <= report[model]["max"]
            )
            assert report[model]["tokens_per_s"] > 0 and len(report[model]["samples"]) == 2
        assert report["ratio"] == pytest.approx(report["bermo"]["median"] / report["plain"]["median"])
        assert report["paired_ratio_median"] > 0 and report["min_ratio"] > 0
    memory = result["inference_memory"]
    for model in ("plain", "bermo"):
        # Schema and sanity only: resident memory moves by itself, so peak and baseline are not compared.
        assert math.isfinite(memory[model]["peak_mib"]) and memory[model]["peak_mib"] > 0
        assert math.isfinite(memory[model]["baseline_mib"]) and memory[model]["baseline_mib"] > 0
        assert len(memory[model]["runs"]) == 1
    assert memory["peak_ratio"] == pytest.approx(memory["bermo"]["peak_mib"] / memory["plain"]["peak_mib"])
    assert "above_baseline_ratio" in memory  # None when BERT's forward raised no new peak (here, in-process)
    markdown = output.with_suffix(".md").read_text()
    assert "train step (fwd+bwd)" in markdown and "peak above baseline" in markdown


def test_op_profile_finds_the_mix_as_bermos_only_extra_work(tiny_bert, tmp_path):
    output = tmp_path / "op_profile.json"
    assert op_profile.main(["--size", tiny_bert, "--batch_size", "2", "--seq_len", "8", "--output", str(output)]) == 0

    results = json.loads(output.read_text())
    for step in ("train_step", "inference"):
        entry = results[step]
        assert entry["op_calls"]["bermo"] > entry["op_calls"]["bert"] > 0
        assert 0 < entry["extra_self_cpu_ms"] <= entry["total_self_cpu_ms"]["bermo"]
        assert entry["extra_share_of_bermo_step"] == pytest.approx(
            entry["extra_self_cpu_ms"] / entry["total_self_cpu_ms"]["bermo"]
        )
        # the mix's softmax over the 3 depths (embeddings + 2 layers) is work that only BERMo does
        assert any(key.startswith("aten::_softmax [[3]") for key in entry["extra_ops"])
    assert "extra share" in output.with_suffix(".md").read_text()


@pytest.fixture(scope="module")
def tiny_data_root(tiny_sst2, tmp_path_factory):
    """A `../shared/data`-shaped folder: `sst2/` (the tiny SST-2 above) and `rte/` (24 train, 8 dev pairs with the
    real RTE header `index<TAB>sentence1<TAB>sentence2<TAB>label`)."""
    root = tmp_path_factory.mktemp("tiny_data")
    (root / "sst2").mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (root / "sst2" / name).write_text((tiny_sst2 / name).read_text())
    (root / "rte").mkdir()
    for name, count in (("train.tsv", 24), ("dev.tsv", 8)):
        rows = ["index\tsentence1\tsentence2\tlabel"]
        for index in range(count):
            words = POSITIVE if index % 2 else NEGATIVE
            premise = f"the film is {words[index % 5]} and the cast is {FILLER[index % len(FILLER)]}"
            label = "entailment" if index % 3 else "not_entailment"
            rows.append(f"{index}\t{premise}\tthe film is {words[(index + 1) % 5]}\t{label}")
        (root / "rte" / name).write_text("\n".join(rows) + "\n")
    return root


def _stability_argv(tiny_bert, tiny_data_root, tmp_path, *extra):
    return [
        "--model", tiny_bert, "--data_root", str(tiny_data_root), "--tasks", "rte", "sst2-500",
        "--variants", "bert", "uniform-mix1e-2", "--seeds", "0", "--max_steps", "2", "--batch_size", "8",
        "--evals_per_epoch", "2", "--train_subset", "16", "--name", "tiny_stability",
        "--results_dir", str(tmp_path / "results"), "--figures_dir", str(tmp_path / "figures"), *extra,
    ]  # fmt: skip


def test_stability_records_each_run_and_skips_recorded_ones(tiny_bert, tiny_data_root, tmp_path, monkeypatch):
    argv = _stability_argv(tiny_bert, tiny_data_root, tmp_path)
    assert stability.main(argv) == 0

    path = tmp_path / "results" / "tiny_stability.json"
    results = json.loads(path.read_text())
    assert results["command"].startswith("python bench/stability.py") and results["machine"]["versions"]["torch"]
    assert [(run["task"], run["variant"], run["seed"]) for run in results["runs"]] == [
        ("rte", "bert", 0), ("rte", "uniform-mix1e-2", 0), ("sst2-500", "bert", 0), ("sst2-500", "uniform-mix1e-2", 0)
    ]  # fmt: skip
    for run in results["runs"]:
        settings = run["settings"]
        assert settings["task"] == run["task"] and settings["variant"] == run["variant"]
        assert settings["max_steps"] == 2 and settings["batch_size"] == 8 and settings["warmup_ratio"] == 0.1
        assert settings["learning_rate"] == stability.TASKS[run["task"]]["learning_rate"]
        assert run["num_train"] == 16 and run["num_dev"] == (8 if run["task"] == "rte" else 16)
        assert [point["step"] for point in run["curve"]] == [0, 1, 2] and run["steps"] == 2
        assert run["best_accuracy"] == max(point["dev_accuracy"] for point in run["curve"])
        assert run["final_accuracy"] == run["curve"][-1]["dev_accuracy"] and run["wall_time_s"] > 0
        assert 0.5 <= run["majority_share"] <= 1 and run["machine"]["device"] == "cpu"
        assert json.loads(run["key"])["seed"] == 0
        assert ("layer_weights" in run) == (run["variant"] != "bert")
    bermo = results["runs"][1]
    assert bermo["settings"]["mix_learning_rate"] == 0.01 and bermo["settings"]["layer_mix_init"] == "uniform"
    summary = results["summary"]
    assert set(summary) == {"rte", "sst2-500"}
    for entry in summary.values():
        assert set(entry["variants"]) == {"bert", "uniform-mix1e-2"}
        row = entry["variants"]["uniform-mix1e-2"]
        assert row["seeds"] == [0] and 0 <= row["failed"] <= 1 and row["paired_final_difference_to_bert"] is not None
    assert (tmp_path / "figures" / "tiny_stability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (tmp_path / "results" / "tiny_stability.md").read_text()
    assert "**rte**" in markdown and "| BERT |" in markdown and "BERMo uniform, mix lr 0.01" in markdown

    # rerunning the same command trains nothing; a grown grid trains only what is missing, seed-major
    trained = []

    def fake_train_one(settings, variant, seed, *args):
        trained.append((settings["task"], variant["variant"], seed))
        run = {**results["runs"][0], "task": settings["task"], "variant": variant["variant"], "seed": seed}
        return {**run, "key": stability.run_key(settings, variant, seed)}

    monkeypatch.setattr(stability, "train_one", fake_train_one)
    assert stability.main(argv) == 0 and trained == []
    assert json.loads(path.read_text())["runs"] == results["runs"]
    assert stability.main([*argv, "--seeds", "0", "1", "--seeds_per_task", "sst2-500=1"]) == 0
    assert trained == [("rte", "bert", 1), ("rte", "uniform-mix1e-2", 1)]
    assert len(json.loads(path.read_text())["runs"]) == 6
    # another learning rate is another run; a spent time budget starts none
    assert stability.main([*argv, "--learning_rate", "1e-4", "--time_budget_min", "0"]) == 0
    assert len(trained) == 2 and len(json.loads(path.read_text())["runs"]) == 6


def test_stability_summary_counts_failures_pairs_seeds_and_steps_to_berts_best():
    def run(task, variant, seed, accuracies, majority=0.5):
        curve = [{"step": 10 * i, "dev_accuracy": a, "train_loss": None} for i, a in enumerate(accuracies)]
        return {
            "task": task, "variant": variant, "seed": seed, "curve": curve, "final_accuracy": accuracies[-1],
            "best_accuracy": max(accuracies), "majority_share": majority, "num_dev": 100, "wall_time_s": 1.0,
        }  # fmt: skip

    runs = [
        run("rte", "bert", 0, [0.5, 0.6, 0.7]),
        run("rte", "bert", 1, [0.5, 0.5, 0.52]),  # at or below 0.5 + 0.02: failed
        run("rte", "last", 0, [0.5, 0.7, 0.66]),
        run("rte", "last", 1, [0.5, 0.6, 0.62]),
    ]
    summary = stability.summarize(runs)["rte"]
    assert summary["failed_at_or_below"] == pytest.approx(0.52)
    assert summary["bert_best_mean"] == pytest.approx(0.61) and summary["target_accuracy"] == pytest.approx(0.6039)
    bert, last = summary["variants"]["bert"], summary["variants"]["last"]
    assert bert["failed"] == 1 and last["failed"] == 0
    assert bert["final_accuracy"]["worst"] == 0.52 and bert["final_accuracy"]["best"] == 0.7
    assert last["paired_final_difference_to_bert"]["mean"] == pytest.approx(((0.66 - 0.7) + (0.62 - 0.52)) / 2)
    assert last["steps_to_bert_best_per_seed"] == {0: 10, 1: 20} and last["steps_to_bert_best_median"] == 15
    assert bert["runs_reaching_bert_best"] == 1 and last["runs_reaching_bert_best"] == 2
    assert last["final_values"] == [0.66, 0.62]
    markdown = stability.summary_markdown(stability.summarize(runs))
    assert "| BERT | 2 |" in markdown and "1 of 2" in markdown and "BERMo last, mix lr = model" in markdown


def test_stability_refuses_a_malformed_seed_limit(capsys):
    with pytest.raises(SystemExit):
        stability.parse_args(["--seeds_per_task", "mnli=3"])
    assert "--seeds_per_task takes TASK=N" in capsys.readouterr().err


def test_pruning_records_each_run_skips_recorded_ones_and_takes_rte(tiny_bert, tiny_data_root, tmp_path, monkeypatch):
    argv = [
        "--model", tiny_bert, "--data_dir", str(tiny_data_root / "sst2"), "--seeds", "0", "--sparsities", "0.5",
        "--penalties", "10", "--max_steps", "10", "--batch_size", "8", "--train_subset", "16", "--dev_subset", "8",
        "--name", "tiny_pruning", "--results_dir", str(tmp_path / "results"), "--figures_dir", str(tmp_path / "fig"),
    ]  # fmt: skip
    assert pruning.main(argv) == 0
    path = tmp_path / "results" / "tiny_pruning.json"
    results = json.loads(path.read_text())
    assert [(run["model"], run["pruning"]["method"]) for run in results["runs"]] == [
        ("bert", "magnitude"), ("bermo", "magnitude"), ("bert", "soft-movement"), ("bermo", "soft-movement")
    ]  # fmt: skip
    assert all(run["device"] == "cpu" and json.loads(run["key"])["seed"] == 0 for run in results["runs"])
    assert results["runs"][0]["encoder_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert {row["model"] for row in results["summary"]["magnitude"]} == {"bert", "bermo"}
    assert (tmp_path / "fig" / "tiny_pruning.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def refuse(*args, **kwargs):
        raise AssertionError("a recorded run was trained again")

    monkeypatch.setattr(pruning, "run_one", refuse)
    assert pruning.main(argv) == 0
    again = json.loads(path.read_text())
    assert again["runs"] == results["runs"] and again["summary"] == results["summary"]
    monkeypatch.undo()

    # a grid spread over processes: each model's runs at a new target in a folder of their own, then merged
    extra = []
    for model in ("bert", "bermo"):
        folder = tmp_path / model
        assert pruning.main([*argv, "--models", model, "--sparsities", "0.6", "--results_dir", str(folder)]) == 0
        runs = json.loads((folder / "tiny_pruning.json").read_text())["runs"]
        assert [(run["model"], run["pruning"].get("final_sparsity")) for run in runs] == [(model, 0.6), (model, None)]
        extra.append(runs[0])
    monkeypatch.setattr(pruning, "run_one", refuse)
    merge_from = [str(tmp_path / model / "tiny_pruning.json") for model in ("bert", "bermo")]
    assert pruning.main([*argv, "--sparsities", "0.5", "0.6", "--merge_from", *merge_from, str(path)]) == 0
    merged = json.loads(path.read_text())
    assert merged["runs"] == results["runs"] + extra  # each run once: the soft-movement ones were recorded already
    assert [row["sparsity"] for row in merged["summary"]["paired"]] == [0.5, 0.6]
    with pytest.raises(SystemExit, match="--merge_from: .*missing.json is not a results file"):
        pruning.main([*argv, "--merge_from", str(tmp_path / "missing.json")])
    monkeypatch.undo()

    # RTE: sentence pairs, from the same script
    rte = [*argv[:2], "--task", "rte", "--data_dir", str(tiny_data_root / "rte"), *argv[4:], "--penalties"]
    rte += ["--name", "tiny_pruning_rte"]
    assert pruning.main(rte) == 0
    results = json.loads((tmp_path / "results" / "tiny_pruning_rte.json").read_text())
    assert results["settings"]["task"] == "rte" and results["dev_sentences"] == 8 and len(results["runs"]) == 2


def test_quantization_measures_pytorch_and_both_graphs_and_skips_recorded_models(
    tiny_bert, tiny_sst2, tmp_path, monkeypatch
):
    output = tmp_path / "quantization.json"
    argv = [
        "--models", tiny_bert, "--data_dir", str(tiny_sst2), "--train_size", "16", "--max_steps", "2",
        "--batch_size", "8", "--repeats", "2", "--eval_batch_size", "4", "--output", str(output),
        "--keep_dir", str(tmp_path / "keep"),
    ]  # fmt: skip
    assert quantization.main(argv) == 0
    results = json.loads(output.read_text())
    (result,) = results["results"]
    assert results["command"].startswith("python bench/quantization.py") and result["family"] == "BERT"
    assert result["settings"]["learning_rate"] == 5e-5 and result["training"]["steps"] == 2
    assert result["num_dev"] == 16 and result["float_max_difference"] <= 1e-4
    engines = result["engines"]
    assert list(engines) == list(quantization.ENGINES)
    for entry in engines.values():
        assert 0 <= entry["accuracy"] <= 1 and len(entry["sentences_per_s_passes"]) == 2 and entry["size_mb"] > 0
        assert entry["sentences_per_s"] == pytest.approx(sum(entry["sentences_per_s_passes"]) / 2)  # the median
        ratio = entry["cpu_sentences_per_s"] / engines["PyTorch"]["cpu_sentences_per_s"]
        assert entry["cpu_sentences_per_s_ratio"] == pytest.approx(ratio)
    assert engines["ONNX float"]["accuracy"] == engines["PyTorch"]["accuracy"]
    assert engines["ONNX float"]["agreement_with_pytorch"] == 1.0
    assert engines["ONNX int8"]["size_mb"] < engines["ONNX float"]["size_mb"]
    assert "| ONNX int8 |" in output.with_suffix(".md").read_text()

    def refuse(*args, **kwargs):
        raise AssertionError("a recorded model was measured again")

    monkeypatch.setattr(quantization, "measure_model", refuse)
    assert quantization.main(argv) == 0
    assert json.loads(output.read_text())["results"] == results["results"]
    monkeypatch.undo()

    # an already fine-tuned classifier: measured, not trained
    fine_tuned = tmp_path / "keep" / Path(tiny_bert).name / "checkpoint"
    assert quantization.main([*argv[:2], "--checkpoint", str(fine_tuned), *argv[2:-2]]) == 0
    measured = json.loads(output.read_text())["results"]
    assert len(measured) == 2 and "training" not in measured[1]
    assert measured[1]["engines"]["PyTorch"]["accuracy"] == engines["PyTorch"]["accuracy"]


def test_pruning_pairs_bermo_with_bert_by_seed():
    def run(model, seed, accuracy, sparsity=0.9):
        pruned = {"method": "magnitude", "final_sparsity": sparsity}
        return {"model": model, "seed": seed, "pruning": pruned, "dev_accuracy": accuracy, "encoder_sparsity": sparsity}

    runs = [run("bert", 0, 0.70), run("bermo", 0, 0.74), run("bert", 1, 0.80), run("bermo", 1, 0.78)]
    runs += [run("bert", 2, 0.75)]  # no BERMo run with seed 2: left out of the pairs
    runs += [run("bert", 0, 0.60, 0.95), run("bermo", 0, 0.65, 0.95)]
    paired = pruning.summarize(runs, diverged_at=0.5)["paired"]
    assert [(row["sparsity"], row["seeds"]) for row in paired] == [(0.9, [0, 1]), (0.95, [0])]
    assert paired[0]["differences"] == pytest.approx([0.04, -0.02])
    assert paired[0]["mean"] == pytest.approx(0.01)
    assert paired[0]["standard_error"] == pytest.approx(math.sqrt(0.0018) / math.sqrt(2))
    assert (paired[0]["bermo_ahead"], paired[1]["bermo_ahead"], paired[1]["standard_error"]) == (1, 1, 0.0)
    table = pruning.summary_markdown(pruning.summarize(runs, 0.5), 0.5, 0.52, [0, 1])
    assert "| 90% | +4.00, -2.00 (seeds 0, 1) | +1.00 +- 3.00 | 1 of 2 |" in table
    assert "BERMo - BERT, same seed" in table and "| BERT | 90% |" in table


def test_pruning_names_the_plain_model_by_its_family_and_keeps_every_seed(tmp_path):
    def run(model, seed, accuracy):
        pruned = {"method": "magnitude", "final_sparsity": 0.9}
        return {"model": model, "seed": seed, "pruning": pruned, "dev_accuracy": accuracy, "encoder_sparsity": 0.9}

    runs = [run("bert", 0, 0.59), run("bermo", 0, 0.51), run("bert", 1, 0.80), run("bermo", 1, 0.78)]
    summary = {**pruning.summarize(runs, diverged_at=0.53), "family": "MPNet"}
    rows = {row["model"]: row for row in summary["magnitude"]}
    assert (rows["bert"]["seeds"], rows["bert"]["accuracies"]) == ([0, 1], [0.59, 0.80])
    assert (rows["bermo"]["accuracies"], rows["bermo"]["diverged"]) == ([0.51, 0.78], 1)
    table = pruning.summary_markdown(summary, 0.51, 0.53, [0, 1])
    assert "| MPNet | 90% | 90.00% | 69.50 +- 14.85 | 0 of 2 |" in table
    assert "BERMo - MPNet, same seed" in table and "BERT" not in table
    figure = pruning.plot(summary, 0.53, tmp_path / "pruning.png", "SST-2, mpnet-base")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_probe_seeds_sets_fine_tune_reports_side_by_side(tmp_path, capsys):
    import probe_seeds

    def report(folder, tense, subj_number, **fields):
        tasks = {
            "past_present": {"group": "semantic", "task": "Tense", "bert": tense[0], "bermo": tense[1]},
            "subj_number": {"group": "semantic", "task": "SubjNum", "bert": subj_number[0], "bermo": subj_number[1]},
        }
        average = {"bert": (tense[0] + subj_number[0]) / 2, "bermo": (tense[1] + subj_number[1]) / 2}
        (tmp_path / folder).mkdir(exist_ok=True)
        payload = {"mode": "finetune", "tasks": tasks, "groups": {"semantic": average}} | fields
        (tmp_path / folder / "probe_results.json").write_text(json.dumps(payload))
        return str(tmp_path / folder)

    folders = [report("seed0", (80.0, 82.0), (70.0, 69.0)), report("seed1", (81.0, 80.0), (72.0, 74.0))]
    with pytest.raises(SystemExit, match="checkpoint None is not here; name its family with --plain"):
        probe_seeds.main(folders)
    figure = tmp_path / "figures" / "seeds.png"
    assert probe_seeds.main([*folders, "--plain", "MPNet", "--figure", str(figure)]) == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "| group | task | MPNet, per seed | BERMo, per seed | BERMo - MPNet, per seed | mean difference |" in table
    assert "| semantic | Tense | 80.00, 81.00 | 82.00, 80.00 | +2.00, -1.00 | +0.50 |" in table
    assert "| **semantic average** |  | 75.00, 76.50 | 75.50, 77.00 | +0.50, +0.50 | +0.50 |" in table
    (tmp_path / "seed1" / "probe_results.json").write_text(json.dumps({"mode": "frozen", "tasks": {}, "groups": {}}))
    with pytest.raises(SystemExit, match="fine-tune report of the same tasks"):
        probe_seeds.main([*folders, "--plain", "MPNet"])
    partial = {"mode": "finetune", "tasks": {}, "groups": {}, "pending": ["past_present", "subj_number"]}
    (tmp_path / "seed1" / "probe_results.json").write_text(json.dumps(partial))
    with pytest.raises(SystemExit, match="seed1 is a partial report \\(not run yet: past_present, subj_number\\)"):
        probe_seeds.main([*folders, "--plain", "MPNet"])
    partial = json.loads((tmp_path / "seed0" / "probe_results.json").read_text())
    del partial["tasks"]["subj_number"]
    (tmp_path / "seed1" / "probe_results.json").write_text(json.dumps(partial | {"pending": ["subj_number"]}))
    capsys.readouterr()
    assert probe_seeds.main([*folders, "--plain", "MPNet", "--finished_only"]) == 0
    table = capsys.readouterr().out
    assert "SubjNum" not in table
    assert "| semantic | Tense | 80.00, 80.00 | 82.00, 82.00 | +2.00, +2.00 | +2.00 |" in table
    assert "| **semantic average** |  | 80.00, 80.00 | 82.00, 82.00 | +2.00, +2.00 | +2.00 |" in table
    capsys.readouterr()
    named = {"pending": [], "plain_model": "RoBERTa"}  # a report that names its plain model needs no --plain
    folders = [report("seed0", (80.0, 82.0), (70.0, 69.0), **named)]
    folders += [report("seed1", (81.0, 80.0), (72.0, 74.0), **named)]
    assert probe_seeds.main(folders) == 0
    assert "| RoBERTa, per seed | BERMo, per seed | BERMo - RoBERTa, per seed |" in capsys.readouterr().out
