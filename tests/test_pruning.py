"""Pruning: the cubic schedule, exact sparsity, masks through training, scores' gradients, the soft-movement penalty,
pruned checkpoints that reload (also through trust_remote_code), the sparsity report and bad flags."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file
from torch.nn.utils import parametrize
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

from bermo_hf import BermoConfig, BermoForSequenceClassification
from bermo_hf.errors import PruningArgumentError
from bermo_hf.pruning import (
    ENCODER_MATRICES,
    PRUNING_STATE_FILE,
    Pruner,
    PruningArguments,
    PruningCallback,
    PruningTrainer,
    cubic_sparsity,
    format_sparsity_report,
    prunable_weights,
    sparsity_report,
)

from .conftest import release_python, result_of_fresh_process, tiny_config_kwargs

SEQ_LEN = 8


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny models run fastest on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0, bert: bool = False):
    torch.manual_seed(seed)
    if bert:
        return BertForSequenceClassification(BertConfig(**tiny_config_kwargs(num_labels=2)))
    return BermoForSequenceClassification(BermoConfig(**tiny_config_kwargs(num_labels=2)))


class ToyDataset(torch.utils.data.Dataset):
    """A learnable toy task: the label says whether token 5 occurs in the sequence."""

    def __init__(self, size: int = 64, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(6, 100, (size, SEQ_LEN), generator=generator)
        self.labels = torch.randint(0, 2, (size,), generator=generator)
        self.input_ids[self.labels == 1, 3] = 5

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {
            "input_ids": self.input_ids[index],
            "attention_mask": torch.ones(SEQ_LEN, dtype=torch.long),
            "labels": self.labels[index],
        }


def training_args(tmp_path, max_steps: int = 10, **overrides) -> TrainingArguments:
    kwargs = dict(
        output_dir=str(tmp_path / "trainer"),
        max_steps=max_steps,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        weight_decay=0.01,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        logging_steps=5,
    )
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


def masks(pruner: Pruner) -> dict[str, torch.Tensor]:
    return {name: module.parametrizations.weight[0].mask.clone() for name, module in pruner.targets.items()}


# The schedule


def test_cubic_schedule_is_zhu_and_gupta():
    initial, final, warmup, cooldown, max_steps = 0.1, 0.9, 10, 20, 110
    assert cubic_sparsity(0, max_steps, initial, final, warmup, cooldown) == initial
    assert cubic_sparsity(9, max_steps, initial, final, warmup, cooldown) == initial
    assert cubic_sparsity(10, max_steps, initial, final, warmup, cooldown) == initial
    for step in range(10, 90):
        expected = final + (initial - final) * (1 - (step - 10) / 80) ** 3
        assert cubic_sparsity(step, max_steps, initial, final, warmup, cooldown) == pytest.approx(expected, abs=1e-12)
    assert cubic_sparsity(90, max_steps, initial, final, warmup, cooldown) == final
    assert cubic_sparsity(110, max_steps, initial, final, warmup, cooldown) == final
    # Delta t = 8: the sparsity only changes at t_0 + k * Delta t.
    values = [cubic_sparsity(step, max_steps, initial, final, warmup, cooldown, frequency=8) for step in range(120)]
    changes = [step for step in range(1, 120) if values[step] != values[step - 1]]
    assert changes == list(range(18, 90, 8)) + [90]
    assert values[25] == pytest.approx(final + (initial - final) * (1 - 8 / 80) ** 3)


# Exact sparsity per schedule step


@pytest.mark.parametrize("method", ["magnitude", "movement"])
@pytest.mark.parametrize("global_pruning", [True, False], ids=["global", "per-matrix"])
def test_exact_target_sparsity_each_step(method, global_pruning):
    model = tiny_model()
    args = PruningArguments(
        method=method,
        initial_sparsity=0.05,
        final_sparsity=0.9,
        warmup_steps_pruning=2,
        cooldown_steps_pruning=3,
        global_pruning=global_pruning,
    )
    pruner = Pruner(model, args)
    if method == "movement":
        for module in pruner.targets.values():
            torch.nn.init.normal_(module.parametrizations.weight[0].scores)
    max_steps = 20
    seen = set()
    for step in range(max_steps + 1):
        pruner.step(step, max_steps)
        target = cubic_sparsity(step, max_steps, 0.05, 0.9, 2, 3)
        seen.add(round(target, 6))
        weights = [module.weight for module in pruner.targets.values()]
        if global_pruning:
            total = sum(w.numel() for w in weights)
            assert sum(int((w == 0).sum()) for w in weights) == round(target * total)
        else:
            for weight in weights:
                assert int((weight == 0).sum()) == round(target * weight.numel())
    assert len(seen) > 10  # the schedule really moved through many sparsities
    # Per-matrix pruning gives every matrix the same sparsity; global pruning generally does not.
    report = pruner.apply()
    per_matrix = {round(m["sparsity"], 2) for layer in report["layers"] for m in layer["matrices"].values()}
    assert (len(per_matrix) == 1) != global_pruning
    assert report["encoder"]["zeros"] == round(0.9 * report["encoder"]["total"]) or not global_pruning


def test_magnitude_prunes_smallest_and_never_regrows():
    model = tiny_model()
    pruner = Pruner(model, PruningArguments(method="magnitude", final_sparsity=0.8))
    query = pruner.targets["bert.encoder.layer.0.attention.self.query"]
    original = query.parametrizations.weight.original.detach().clone()
    previous = None
    for step in range(11):
        pruner.step(step, 10)
        mask = query.parametrizations.weight[0].mask
        if mask.sum() < mask.numel():
            assert original.abs()[mask].min() >= original.abs()[~mask].max()
        if previous is not None:
            assert not (mask & ~previous).any()
        previous = mask.clone()


# Training with the Trainer


class CheckMaskedWeights(TrainerCallback):
    """After every optimizer step: each pruned matrix holds exactly the scheduled share of zero weights."""

    def __init__(self, pruner):
        self.pruner = pruner
        self.checked_steps = 0

    def on_step_end(self, args, state, control, **kwargs):
        if self.pruner.applied:
            return
        for module in self.pruner.targets.values():  # per-matrix pruning: each matrix at the scheduled sparsity
            assert int((module.weight == 0).sum()) == round(self.pruner.sparsity * module.weight.numel())
        self.checked_steps += 1


def test_pruned_weights_stay_zero_after_optimizer_steps(tmp_path):
    model = tiny_model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = PruningArguments(method="magnitude", final_sparsity=0.7, warmup_steps_pruning=2, cooldown_steps_pruning=3)
    pruner = Pruner(model, args)
    checker = CheckMaskedWeights(pruner)
    trainer = PruningTrainer(
        pruner=pruner,
        model=model,
        args=training_args(tmp_path, max_steps=12),
        train_dataset=ToyDataset(),
        callbacks=[checker],
    )
    trainer.train()
    assert checker.checked_steps == 12
    assert pruner.applied and not any(parametrize.is_parametrized(m) for m in model.modules())
    report = sparsity_report(model)
    assert report["encoder"]["zeros"] == sum(round(0.7 * m.weight.numel()) for m in pruner.targets.values())
    # The optimizer really moved the kept weights.
    query = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(dict(model.named_parameters())[query], before[query])


def test_plain_trainer_with_callback_prunes_by_magnitude(tmp_path):
    model = tiny_model(bert=True)
    pruner = Pruner(model, PruningArguments(method="magnitude", final_sparsity=0.5, global_pruning=True))
    trainer = Trainer(
        model=model,
        args=training_args(tmp_path, max_steps=4),
        train_dataset=ToyDataset(),
        callbacks=[PruningCallback(pruner)],
    )
    trainer.train()
    encoder = sparsity_report(model)["encoder"]
    assert encoder["zeros"] == round(0.5 * encoder["total"])


def test_plain_trainer_refuses_movement_without_scores_group(tmp_path):
    model = tiny_model()
    pruner = Pruner(model, PruningArguments(method="movement", final_sparsity=0.5))
    trainer = Trainer(
        model=model,
        args=training_args(tmp_path, max_steps=2),
        train_dataset=ToyDataset(),
        callbacks=[PruningCallback(pruner)],
    )
    with pytest.raises(ValueError, match="PruningTrainer"):
        trainer.train()


def test_movement_scores_get_gradients_straight_through(tmp_path):
    model = tiny_model()
    pruner = Pruner(model, PruningArguments(method="movement", initial_sparsity=0.5, final_sparsity=0.5))
    # Scattered masks: with the tied initial scores, whole heads of both query and key can be pruned, which leaves
    # those heads' scores without any gradient.
    for module in pruner.targets.values():
        torch.nn.init.normal_(module.parametrizations.weight[0].scores)
    pruner.step(0, 10)
    batch = ToyDataset(size=8)[:]
    model.train()
    model(**batch).loss.backward()
    for module in pruner.targets.values():
        mask_module = module.parametrizations.weight[0]
        original = module.parametrizations.weight.original
        scores_grad = mask_module.scores.grad
        assert scores_grad is not None and scores_grad.abs().sum() > 0
        # Pruned weights' scores get a gradient too (so that they can come back), their weights none.
        assert scores_grad[~mask_module.mask].abs().sum() > 0
        assert (original.grad[~mask_module.mask] == 0).all()
        # Straight-through: dL/dS = dL/dW' * W, where dL/dW = dL/dW' on kept weights.
        kept = mask_module.mask
        torch.testing.assert_close(scores_grad[kept], (original.grad * original.detach())[kept])


def test_scores_have_their_own_optimizer_group(tmp_path):
    model = tiny_model()
    pruner = Pruner(model, PruningArguments(method="movement", final_sparsity=0.5, warmup_steps_pruning=1))
    trainer = PruningTrainer(
        pruner=pruner, model=model, args=training_args(tmp_path, max_steps=3), train_dataset=ToyDataset()
    )
    optimizer = trainer.create_optimizer()
    scores_group = [group for group in optimizer.param_groups if group.get("name") == "pruning_scores"]
    assert len(scores_group) == 1
    assert scores_group[0]["lr"] == 1e-2 and scores_group[0]["weight_decay"] == 0.0
    score_ids = {id(p) for p in pruner.score_parameters()}
    assert {id(p) for p in scores_group[0]["params"]} == score_ids
    others = [id(p) for group in optimizer.param_groups if group is not scores_group[0] for p in group["params"]]
    assert not score_ids & set(others)
    trainer.train()
    encoder = sparsity_report(model)["encoder"]
    assert encoder["zeros"] == sum(round(0.5 * m.weight.numel()) for m in pruner.targets.values())


def soft_movement_density(tmp_path, penalty: float) -> float:
    model = tiny_model()
    args = PruningArguments(method="soft-movement", penalty=penalty, scores_learning_rate=0.5, warmup_steps_pruning=2)
    pruner = Pruner(model, args)
    trainer = PruningTrainer(
        pruner=pruner,
        model=model,
        args=training_args(tmp_path, max_steps=10, learning_rate=1e-4, lr_scheduler_type="constant"),
        train_dataset=ToyDataset(),
    )
    trainer.train()
    return 1.0 - sparsity_report(model)["encoder"]["sparsity"]


def test_soft_movement_penalty_lowers_density(tmp_path):
    without_penalty = soft_movement_density(tmp_path, penalty=0.0)
    with_penalty = soft_movement_density(tmp_path, penalty=1e6)
    assert with_penalty < without_penalty - 0.2
    assert 0.0 <= with_penalty < 1.0


# Pruned checkpoints


def pruned_tiny_model(bert: bool = False):
    model = tiny_model(seed=3, bert=bert)
    pruner = Pruner(model, PruningArguments(method="magnitude", final_sparsity=0.6, prune_classifier=True))
    pruner.apply()
    return model.eval()


def test_saved_pruned_checkpoint_reloads_with_same_zeros_and_logits(tmp_path):
    model = pruned_tiny_model()
    model.save_pretrained(tmp_path / "pruned")
    saved = load_file(tmp_path / "pruned" / "model.safetensors")
    assert not [key for key in saved if "parametrizations" in key or key.endswith(".scores")]
    reloaded = BermoForSequenceClassification.from_pretrained(tmp_path / "pruned").eval()
    inputs = ToyDataset(size=4)[:]["input_ids"]
    for name, module in prunable_weights(model, classifier=True).items():
        reloaded_weight = reloaded.get_submodule(name).weight
        assert torch.equal(reloaded_weight == 0, module.weight == 0), name
        assert int((module.weight == 0).sum()) == round(0.6 * module.weight.numel())
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=inputs).logits, model(input_ids=inputs).logits)
    assert sparsity_report(reloaded) == sparsity_report(model)


def test_pruned_bert_baseline_saves_as_plain_bert(tmp_path):
    model = pruned_tiny_model(bert=True)
    model.save_pretrained(tmp_path / "bert")
    assert json.loads((tmp_path / "bert" / "config.json").read_text())["model_type"] == "bert"
    reloaded = BertForSequenceClassification.from_pretrained(tmp_path / "bert")
    assert sparsity_report(reloaded) == sparsity_report(model)


def test_pruned_checkpoint_reloads_through_trust_remote_code_without_bermo_hf(tmp_path):
    model = pruned_tiny_model()
    model.save_pretrained(tmp_path / "pruned")
    inputs = ToyDataset(size=4)[:]["input_ids"]
    with torch.no_grad():
        expected = model(input_ids=inputs).logits
    torch.save(
        {"inputs": inputs, "logits": expected, "zeros": sparsity_report(model)["encoder"]["zeros"]}, tmp_path / "x.pt"
    )
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["bermo_hf"] = None  # the package is not installed on the reading machine
        import torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "pruned")!r}, trust_remote_code=True)
        model.eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        data = torch.load({str(tmp_path / "x.pt")!r})
        zeros = 0
        for layer in model.bert.encoder.layer:
            for path in {list(ENCODER_MATRICES.values())!r}:
                zeros += int((layer.get_submodule(path).weight == 0).sum())
        assert zeros == data["zeros"], (zeros, data["zeros"])
        with torch.no_grad():
            torch.testing.assert_close(model(input_ids=data["inputs"]).logits, data["logits"])
        print("OK")
        """
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")


# The report


def test_sparsity_report_and_format():
    model = tiny_model()
    pruner = Pruner(model, PruningArguments(method="magnitude", final_sparsity=0.5))
    during = sparsity_report(model)
    assert during["encoder"]["zeros"] == 0
    report = pruner.apply()
    assert report == sparsity_report(model)
    assert len(report["layers"]) == 2 and set(report["layers"][0]["matrices"]) == set(ENCODER_MATRICES)
    assert report["encoder"]["sparsity"] == pytest.approx(0.5, abs=1e-3)
    params = report["parameters"]
    assert params["total"] == sum(p.numel() for p in model.parameters())
    assert params["remaining"] == params["total"] - params["zeros"] and params["zeros"] >= report["encoder"]["zeros"]
    text = format_sparsity_report(report)
    assert "encoder sparsity: 50.0" in text and "remaining parameters" in text
    lines = text.splitlines()
    assert lines[0].split() == ["layer", *ENCODER_MATRICES, "all"] and lines[1].split()[0] == "0"
    assert lines[-1].startswith("remaining parameters: ")


def test_optional_targets():
    model = tiny_model()
    assert len(prunable_weights(model)) == 2 * 6
    everything = prunable_weights(model, embeddings=True, pooler=True, classifier=True)
    assert len(everything) == 2 * 6 + 3 + 1 + 1
    assert {"bert.pooler.dense", "classifier", "bert.embeddings.word_embeddings"} <= set(everything)


# Bad flags


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(final_sparsity=1.0), r"--final_sparsity=1\.0 is out of range: a sparsity must lie in \[0, 1\)"),
        (dict(final_sparsity=-0.1), r"--final_sparsity=-0\.1 is out of range"),
        (dict(final_sparsity=0.5, initial_sparsity=1.2), r"--initial_sparsity=1\.2 is out of range"),
        (
            dict(method="lottery", final_sparsity=0.5),
            r"--method 'lottery' is not supported: use one of magnitude, movement",
        ),
        (dict(method="magnitude"), r"--method magnitude needs --final_sparsity"),
        (dict(final_sparsity=0.3, initial_sparsity=0.5), r"--final_sparsity=0\.3 is below --initial_sparsity=0\.5"),
        (dict(method="soft-movement"), r"--method soft-movement needs --penalty"),
        (dict(method="soft-movement", penalty=1.0, final_sparsity=0.9), r"--final_sparsity=0\.9 does not apply"),
        (dict(final_sparsity=0.5, penalty=1.0), r"--penalty=1\.0 applies to --method soft-movement only"),
        (dict(final_sparsity=0.5, warmup_steps_pruning=-1), r"--warmup_steps_pruning=-1 is out of range"),
    ],
)
def test_bad_pruning_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PruningArguments(**kwargs)


def test_warmup_past_max_steps(tmp_path):
    args = PruningArguments(final_sparsity=0.5, warmup_steps_pruning=10)
    with pytest.raises(
        ValueError, match=r"--warmup_steps_pruning=10 is past the end of training \(10 optimizer steps\)"
    ):
        args.check_schedule(10)
    args = PruningArguments(final_sparsity=0.5, warmup_steps_pruning=4, cooldown_steps_pruning=7)
    with pytest.raises(ValueError, match=r"plus --cooldown_steps_pruning=7 is past the end of training"):
        args.check_schedule(10)
    model = tiny_model()
    pruner = Pruner(model, PruningArguments(final_sparsity=0.5, warmup_steps_pruning=5))
    trainer = PruningTrainer(
        pruner=pruner, model=model, args=training_args(tmp_path, max_steps=5), train_dataset=ToyDataset()
    )
    with pytest.raises(ValueError, match="--warmup_steps_pruning=5 is past the end of training"):
        trainer.train()


# `bermo prune`


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, minilm_path):
    """A tiny random BERT with the real MiniLM tokenizer, and a small labelled tsv file."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(**tiny_config_kwargs(vocab_size=30522))).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    words = ["good", "great", "fine", "bad", "awful", "dull"]
    rows = ["label\tsentence"] + [f"{int(i % 6 < 3)}\ta {words[i % 6]} film number {i}" for i in range(48)]
    (folder / "data.tsv").write_text("\n".join(rows) + "\n")
    return folder


def prune_argv(checkpoint, output_dir, *extra) -> list[str]:
    return [
        "--model_name_or_path", str(checkpoint),
        "--train_file", str(checkpoint / "data.tsv"),
        "--validation_file", str(checkpoint / "data.tsv"),
        "--output_dir", str(output_dir),
        "--max_steps", "6",
        "--per_device_train_batch_size", "8",
        "--learning_rate", "1e-3",
        "--report_to", "none",
        "--disable_tqdm", "true",
        "--use_cpu", "true",
        *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "extra, model_type",
    [
        (["--method", "magnitude", "--final_sparsity", "0.75", "--warmup_steps_pruning", "1"], "bermo"),
        (["--method", "soft-movement", "--penalty", "1e6", "--scores_learning_rate", "1", "--baseline"], "bert"),
    ],
    ids=["magnitude-bermo", "soft-movement-bert"],
)
def test_prune_command_writes_a_pruned_checkpoint(tmp_path, capsys, tiny_checkpoint, extra, model_type):
    from bermo_hf.commands import prune

    output_dir = tmp_path / "pruned"
    assert prune.main(prune_argv(tiny_checkpoint, output_dir, *extra)) == 0
    printed = capsys.readouterr().out
    report = json.loads((output_dir / "pruning_report.json").read_text())
    assert json.loads((output_dir / "config.json").read_text())["model_type"] == model_type
    assert "eval_accuracy" in report["eval_metrics"] and (output_dir / "metrics.json").is_file()
    saved = load_file(output_dir / "model.safetensors")
    assert not [key for key in saved if "parametrizations" in key or key.endswith(".scores")]
    zeros = sum(
        int((value == 0).sum()) for key, value in saved.items() if ".encoder." in key and key.endswith("weight")
    )
    zeros -= sum(int((v == 0).sum()) for k, v in saved.items() if ".encoder." in k and "LayerNorm" in k)
    assert zeros == report["sparsity"]["encoder"]["zeros"] > 0
    assert f"encoder sparsity: {100 * report['sparsity']['encoder']['sparsity']:.2f}%" in printed
    if model_type == "bermo":
        assert report["sparsity"]["encoder"]["zeros"] == 2 * (4 * round(0.75 * 32 * 32) + 2 * round(0.75 * 32 * 37))
    else:
        assert "final sparsity reached with --penalty 1000000.0" in printed
    assert not list(tmp_path.glob(".pruned*"))  # no partial folder left behind


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--final_sparsity", "1.0"], "--final_sparsity=1.0 is out of range: a sparsity must lie in [0, 1)."),
        (["--method", "lottery", "--final_sparsity", "0.5"], "--method 'lottery' is not supported: use one of"),
        (
            ["--final_sparsity", "0.5", "--warmup_steps_pruning", "6"],
            "--warmup_steps_pruning=6 is past the end of training (6 optimizer steps): it must be below 6.",
        ),
        (
            ["--final_sparsity", "0.5", "--warmup_steps_pruning", "6", "--max_steps", "-1", "--num_train_epochs", "1"],
            "--warmup_steps_pruning=6 is past the end of training (6 optimizer steps): it must be below 6.",
        ),
        (["--final_sparsity", "0.5", "--load_best_model_at_end", "true"], "--load_best_model_at_end is not allowed"),
    ],
    ids=["sparsity", "method", "warmup", "warmup-epochs", "best-model"],
)
def test_prune_command_rejects_bad_flags(tmp_path, capsys, tiny_checkpoint, extra, message):
    from bermo_hf.commands import prune

    output_dir = tmp_path / "pruned"
    assert prune.main(prune_argv(tiny_checkpoint, output_dir, *extra)) == 1
    error = capsys.readouterr().err
    assert "Traceback" not in error
    # The message is the last line (reading the data and the model may print progress bars before it).
    last_line = error.strip().splitlines()[-1]
    assert last_line.startswith("bermo prune: error: ") and message in last_line
    assert not output_dir.exists() and not list(tmp_path.glob(".pruned*"))


def test_inspect_shows_the_sparsity_of_a_pruned_checkpoint(tmp_path, capsys):
    from bermo_hf.cli import main as bermo

    pruned_tiny_model().save_pretrained(tmp_path / "pruned")
    assert bermo(["inspect", str(tmp_path / "pruned")]) == 0
    table = capsys.readouterr().out
    assert "gamma = " in table and "encoder sparsity: 59.96%" in table
    assert bermo(["inspect", str(tmp_path / "pruned"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sparsity"]["encoder"]["sparsity"] == pytest.approx(0.6, abs=1e-3)


# Ties, the soft-movement penalty's normalization, checkpoints saved mid-pruning, resuming


def test_movement_from_fresh_scores_breaks_ties_by_magnitude_and_prunes_no_whole_row():
    model = tiny_model(seed=5)
    pruner = Pruner(model, PruningArguments(method="movement", initial_sparsity=0.5, final_sparsity=0.5))
    for name, module in pruner.targets.items():
        mask = module.parametrizations.weight[0].mask
        original = module.parametrizations.weight.original.detach().abs()
        assert int((~mask).sum()) == round(0.5 * mask.numel()), name
        assert mask.any(dim=1).all() and mask.any(dim=0).all(), f"{name}: a whole row or column is pruned"
        # The kept half is the larger half of |W|: the smallest kept magnitude is above the largest pruned one.
        assert original[mask].min() >= original[~mask].max(), name


def test_global_movement_ties_are_broken_by_magnitude_too():
    model = tiny_model(seed=6)
    args = PruningArguments(method="movement", initial_sparsity=0.7, final_sparsity=0.7, global_pruning=True)
    pruner = Pruner(model, args)
    kept = torch.cat([m.parametrizations.weight[0].mask.reshape(-1) for m in pruner.targets.values()])
    weights = torch.cat(
        [m.parametrizations.weight.original.detach().abs().reshape(-1) for m in pruner.targets.values()]
    )
    assert int((~kept).sum()) == round(0.7 * kept.numel())
    assert weights[kept].min() >= weights[~kept].max()


class TwoMatrices(torch.nn.Module):
    """The smallest model `Pruner` takes: no encoder layer, a pooler (4 x 4) and a classifier (2 x 4)."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Module()
        self.encoder.layer = torch.nn.ModuleList()
        self.pooler = torch.nn.Module()
        self.pooler.dense = torch.nn.Linear(4, 4)
        self.classifier = torch.nn.Linear(4, 2)


@pytest.mark.parametrize("normalization", ["per-matrix", "global"])
def test_soft_movement_penalty_normalization_by_hand(normalization):
    args = PruningArguments(
        method="soft-movement",
        penalty=3.0,
        prune_pooler=True,
        prune_classifier=True,
        penalty_normalization=normalization,
    )
    model = TwoMatrices()
    pruner = Pruner(model, args)
    with torch.no_grad():
        model.pooler.dense.parametrizations.weight[0].scores.fill_(0.0)  # sigmoid 0.5 on 16 weights
        model.classifier.parametrizations.weight[0].scores.fill_(2.0)  # sigmoid 0.881 on 8 weights
    pruner.step(10, 10)  # the end of the schedule: the full lambda
    high = torch.sigmoid(torch.tensor(2.0))
    if normalization == "per-matrix":  # Sanh et al.: each matrix's mean, averaged over the matrices
        expected = 3.0 * (0.5 + high) / 2
    else:
        expected = 3.0 * (16 * 0.5 + 8 * high) / 24
    torch.testing.assert_close(pruner.penalty(), expected)


def test_penalty_normalization_is_a_soft_movement_flag():
    with pytest.raises(ValueError, match="--penalty_normalization=global applies to --method soft-movement only"):
        PruningArguments(method="magnitude", final_sparsity=0.5, penalty_normalization="global")
    with pytest.raises(
        ValueError, match="--penalty_normalization 'l2' is not supported: use one of per-matrix, global"
    ):
        PruningArguments(method="soft-movement", penalty=1.0, penalty_normalization="l2")


@pytest.mark.parametrize("bert", [False, True], ids=["bermo", "bert"])
def test_a_checkpoint_saved_mid_pruning_reloads_with_identical_logits(tmp_path, bert):
    model = tiny_model(seed=4, bert=bert)
    pruner = Pruner(model, PruningArguments(method="movement", final_sparsity=0.6))
    for module in pruner.targets.values():
        torch.nn.init.normal_(module.parametrizations.weight[0].scores)
    pruner.step(10, 10)
    model.save_pretrained(tmp_path / "mid")
    saved = load_file(tmp_path / "mid" / "model.safetensors")
    assert set(saved) == set(tiny_model(seed=4, bert=bert).state_dict())  # an ordinary checkpoint, nothing beside
    model_class = BertForSequenceClassification if bert else BermoForSequenceClassification
    reloaded, info = model_class.from_pretrained(tmp_path / "mid", output_loading_info=True)
    assert not any(info.values()), info  # nothing missing, unexpected or re-initialized
    inputs = ToyDataset(size=4)[:]["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(input_ids=inputs).logits, model.eval()(input_ids=inputs).logits)
    assert sparsity_report(reloaded)["encoder"]["zeros"] == sum(
        round(0.6 * m.weight.numel()) for m in pruner.targets.values()
    )


def test_a_pruning_checkpoint_is_a_clean_model_with_the_pruning_state_beside_it(tmp_path):
    model = tiny_model(seed=2)
    args = training_args(tmp_path, max_steps=4, save_strategy="steps", save_steps=2)
    pruning = PruningArguments(method="movement", initial_sparsity=0.2, final_sparsity=0.6, warmup_steps_pruning=1)
    trainer = PruningTrainer(model=model, args=args, train_dataset=ToyDataset(), pruning_args=pruning)
    trainer.train()
    checkpoint = tmp_path / "trainer" / "checkpoint-2"
    state = load_file(checkpoint / PRUNING_STATE_FILE)
    query = "bert.encoder.layer.0.attention.self.query"
    assert {f"{query}.weight_original", f"{query}.weight_mask", f"{query}.weight_scores"} <= set(state)
    for model_class, expected_unexpected in (
        (BermoForSequenceClassification, set()),
        (BertForSequenceClassification, {"bert.layer_mix.weights", "bert.layer_mix.gamma"}),
    ):
        loaded, info = model_class.from_pretrained(checkpoint, output_loading_info=True)
        assert set(info["unexpected_keys"]) == expected_unexpected
        assert not info["missing_keys"] and not info["mismatched_keys"]
    masked = load_file(checkpoint / "model.safetensors")[f"{query}.weight"]
    torch.testing.assert_close(masked, state[f"{query}.weight_original"] * state[f"{query}.weight_mask"])


def test_resuming_from_a_checkpoint_without_pruning_state_fails_with_one_line(tmp_path):
    plain = training_args(tmp_path / "plain", max_steps=2, save_strategy="steps", save_steps=2)
    Trainer(model=tiny_model(seed=2), args=plain, train_dataset=ToyDataset()).train()
    args = training_args(tmp_path / "pruned", max_steps=4)
    trainer = PruningTrainer(
        model=tiny_model(seed=2),
        args=args,
        train_dataset=ToyDataset(),
        pruning_args=PruningArguments(method="magnitude", final_sparsity=0.5),
    )
    with pytest.raises(
        PruningArgumentError, match=f"checkpoint-2 has no {PRUNING_STATE_FILE}: it was not saved by a pruning run"
    ):
        trainer.train(resume_from_checkpoint=str(tmp_path / "plain" / "trainer" / "checkpoint-2"))


RESUMED_METHODS = {
    "magnitude": dict(method="magnitude", final_sparsity=0.7, warmup_steps_pruning=1, pruning_frequency=2),
    "movement": dict(method="movement", initial_sparsity=0.2, final_sparsity=0.7, warmup_steps_pruning=1),
    "soft-movement": dict(method="soft-movement", penalty=50.0, scores_learning_rate=0.5, warmup_steps_pruning=1),
}


@pytest.mark.parametrize("method", list(RESUMED_METHODS))
def test_resuming_a_pruning_run_continues_the_schedule_exactly(tmp_path, method):
    def run(output_dir, resume=None):
        model = tiny_model(seed=2)
        args = training_args(output_dir, max_steps=8, save_strategy="steps", save_steps=3, logging_steps=1)
        trainer = PruningTrainer(
            model=model, args=args, train_dataset=ToyDataset(), pruning_args=PruningArguments(**RESUMED_METHODS[method])
        )
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    straight = run(tmp_path / "straight")
    checkpoint = tmp_path / "straight" / "trainer" / "checkpoint-3"
    assert (checkpoint / "trainer_state.json").is_file()
    resumed = run(tmp_path / "resumed", resume=str(checkpoint))
    assert resumed.state.global_step == 8
    losses = [[r["loss"] for r in t.state.log_history if "loss" in r] for t in (straight, resumed)]
    assert losses[1] == pytest.approx(losses[0], abs=1e-6)
    resumed_parameters = dict(resumed.model.named_parameters())
    for name, parameter in straight.model.named_parameters():
        torch.testing.assert_close(resumed_parameters[name], parameter, rtol=0, atol=1e-6)
    assert sparsity_report(resumed.model) == sparsity_report(straight.model)


def test_prune_command_resumes_an_interrupted_run_to_the_same_model(tmp_path, capsys, tiny_checkpoint, monkeypatch):
    from bermo_hf.commands import prune

    flags = ["--method", "movement", "--final_sparsity", "0.6", "--save_strategy", "steps", "--save_steps", "2"]
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert prune.main(prune_argv(tiny_checkpoint, straight, *flags)) == 0

    def interrupt_at_step_5(self, args, state, control, **kwargs):
        if state.global_step == 5:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(PruningCallback, "on_step_end", interrupt_at_step_5, raising=False)
        assert prune.main(prune_argv(tiny_checkpoint, interrupted, *flags)) == 130
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("bermo prune: interrupted; ") and "newest: checkpoint-4" in last_line
    assert not (interrupted / "model.safetensors").exists()
    # The checkpoint bermo prune kept is a clean model; the pruning state lies beside it.
    _, info = BermoForSequenceClassification.from_pretrained(interrupted / "checkpoint-4", output_loading_info=True)
    assert not any(info.values()), info
    assert (interrupted / "checkpoint-4" / PRUNING_STATE_FILE).is_file()

    assert prune.main(prune_argv(tiny_checkpoint, interrupted, *flags, "--resume_from_checkpoint", "last")) == 0
    expected, actual = load_file(straight / "model.safetensors"), load_file(interrupted / "model.safetensors")
    assert set(actual) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=0, atol=1e-6, msg=key)
    reports = [json.loads((folder / "pruning_report.json").read_text()) for folder in (straight, interrupted)]
    assert reports[1]["sparsity"] == reports[0]["sparsity"]


# Run in a fresh process of the transformers 4.57.6 environment: a pruning run with a checkpoint, then a resume.
PRUNING_UNDER_4_57 = """
import json, sys
import torch, transformers
from transformers import TrainingArguments
from bermo_hf import BermoConfig, BermoForSequenceClassification
from bermo_hf.errors import PruningArgumentError
from bermo_hf.pruning import PruningArguments, PruningTrainer, sparsity_report

config = BermoConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                     max_position_embeddings=64, num_labels=2)
generator = torch.Generator().manual_seed(0)
ids = torch.randint(6, 100, (32, 8), generator=generator)
data = [{"input_ids": ids[i], "labels": torch.tensor(i % 2)} for i in range(32)]

def run(output_dir, resume=None):
    torch.manual_seed(0)
    model = BermoForSequenceClassification(config)
    args = TrainingArguments(output_dir=output_dir, max_steps=4, per_device_train_batch_size=8, save_strategy="steps",
                             save_steps=2, report_to=[], use_cpu=True, seed=0, learning_rate=1e-3)
    pruning = PruningArguments(method="movement", final_sparsity=0.5, initial_sparsity=0.2)
    trainer = PruningTrainer(model=model, args=args, train_dataset=data, pruning_args=pruning)
    trainer.train(resume_from_checkpoint=resume)
    return model

root = sys.argv[1]
straight = run(root + "/straight")
resumed = run(root + "/resumed", resume=root + "/straight/checkpoint-2")
same = all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))
zeros = sparsity_report(straight)["encoder"]["zeros"]
print("RESULT " + json.dumps({"transformers": transformers.__version__, "same": same, "zeros": zeros}))
"""


def test_pruning_trainer_trains_and_resumes_under_transformers_4_57(transformers_releases, tmp_path):
    python = release_python(transformers_releases / "4.57.6")
    outcome = result_of_fresh_process(["-c", PRUNING_UNDER_4_57, str(tmp_path)], tmp_path, python)
    assert outcome["transformers"] == "4.57.6"
    assert outcome["same"] and outcome["zeros"] == 2 * (4 * 512 + 2 * round(0.5 * 32 * 37))
