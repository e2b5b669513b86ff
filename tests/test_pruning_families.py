"""Movement and soft-movement pruning on every family, BERMo and plain: the importance scores learn, the masks cover
the encoder layers' linear weights of every role and nothing else (embeddings, mix, pooler and head untouched)."""

import pytest
import torch
from transformers import TrainingArguments

import bermo_hf
from bermo_hf.modeling_bermo import family_model_class
from bermo_hf.pruning import PruningArguments, PruningTrainer, prunable_weights, sparsity_report

from .families import TINY_FAMILIES
from .test_families import tiny_config

FAMILIES = [
    family
    for family in TINY_FAMILIES
    if family.id in ("roberta", "deberta-v3", "modernbert", "electra", "distilbert", "albert", "mpnet")
]
METHODS = {
    "movement": dict(method="movement", final_sparsity=0.5, warmup_steps_pruning=1),
    # Adam moves every score by about the learning rate per step: 1.0 takes scores pushed down by the penalty below
    # the threshold (sigmoid(-2.2) = 0.1) within the run.
    "soft-movement": dict(method="soft-movement", penalty=100.0, scores_learning_rate=1.0),
}


def tiny_dataset(family, size: int = 8) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    rows = []
    for index in range(size):
        input_ids = torch.randint(5, 100, (9,), generator=generator)
        row = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": index % 2}
        if family.token_types:
            row["token_type_ids"] = torch.zeros_like(input_ids)
        rows.append(row)
    return rows


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("plain", [False, True], ids=["bermo", "plain"])
@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.id)
def test_score_methods_prune_the_encoders_linear_layers_of_every_family(family, plain, method, tmp_path):
    bermo_class = bermo_hf.family_of(family.model_type).model_class("sequence-classification")
    model_class = family_model_class(bermo_class) if plain else bermo_class
    torch.manual_seed(0)
    model = model_class(tiny_config(family, bermo_class, plain=plain))
    args = TrainingArguments(
        str(tmp_path), max_steps=4, per_device_train_batch_size=4, learning_rate=1e-3, report_to="none",
        save_strategy="no", use_cpu=True,
    )  # fmt: skip
    trainer = PruningTrainer(
        model=model, args=args, train_dataset=tiny_dataset(family), pruning_args=PruningArguments(**METHODS[method])
    )
    pruned = set(prunable_weights(model))
    scores = [score.detach().clone() for score in trainer.pruner.score_parameters()]
    learned = trainer.pruner.score_parameters()
    trainer.train()

    assert any(not torch.equal(before, after.detach()) for before, after in zip(scores, learned, strict=True))
    report = sparsity_report(model)
    assert {role for role, counts in report["roles"].items() if counts["total"]} == {
        "attention_in", "attention_out", "feed_forward_in", "feed_forward_out"
    }  # fmt: skip
    encoder_weights = {
        name for name, module in model.named_modules() if name in pruned and isinstance(module, torch.nn.Linear)
    }
    assert encoder_weights == pruned  # only linear layers, all inside the encoder layers
    assert not any(name.startswith(("classifier", "qa_outputs")) or "embeddings" in name for name in pruned)
    assert all(counts["sparsity"] < 0.05 for counts in report["others"].values())
    if method == "movement":
        assert report["encoder"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    else:
        assert 0 < report["encoder"]["sparsity"] < 1
