"""BERMo under the runtimes BERT supports: attention implementations, bf16, autocast, gradient checkpointing,
torch.compile, and a few `Trainer` steps; plus the memory rule that no depth outlives BERT's own use of it."""

import weakref

import pytest
import torch
from torch.utils.data import Dataset
from transformers import BertConfig, BertModel, Trainer, TrainingArguments

from bermo_hf import BermoConfig, BermoForSequenceClassification, BermoForTokenClassification, BermoModel

from .conftest import tiny_config_kwargs


def tiny_model(model_class=BermoForSequenceClassification, seed=0, **overrides):
    torch.manual_seed(seed)
    config = BermoConfig(**tiny_config_kwargs(**overrides))
    return model_class(config)


def batch(seed=1, size=4, length=9):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 100, (size, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, length - 3 :] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def with_mix(model, weights):
    with torch.no_grad():
        model.base_model.layer_mix.weights.copy_(torch.tensor(weights))
    return model


@pytest.mark.parametrize("model_class", [BermoForSequenceClassification, BermoForTokenClassification])
def test_eager_and_sdpa_attention_agree(model_class):
    eager = with_mix(tiny_model(model_class, attn_implementation="eager"), [0.2, -0.4, 0.7]).eval()
    sdpa = model_class.from_pretrained(
        None, config=eager.config, state_dict=eager.state_dict(), attn_implementation="sdpa"
    )
    assert sdpa.config._attn_implementation == "sdpa" and eager.config._attn_implementation == "eager"
    with torch.no_grad():
        torch.testing.assert_close(sdpa.eval()(**batch()).logits, eager(**batch()).logits, rtol=1e-5, atol=1e-5)


def test_bf16_weights_and_autocast_forward_close_to_float32(tmp_path):
    model = with_mix(tiny_model(), [0.2, -0.4, 0.7]).eval()
    model.save_pretrained(tmp_path)
    bf16 = BermoForSequenceClassification.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert bf16.bert.layer_mix.weights.dtype == torch.bfloat16
    with torch.no_grad():
        reference = model(**batch()).logits
        logits = bf16(**batch()).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast_logits = model(**batch()).logits
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), reference, rtol=0.05, atol=0.05)
    torch.testing.assert_close(autocast_logits.float(), reference, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("use_reentrant", [False, True])
@pytest.mark.parametrize("model_class", [BermoForSequenceClassification, BermoForTokenClassification])
def test_gradient_checkpointing_gives_the_same_gradients(model_class, use_reentrant):
    def gradients(checkpointing):
        model = with_mix(
            tiny_model(model_class, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0), [0.2, -0.4, 0.7]
        )
        model.train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
        labels = (
            torch.tensor([0, 1, 1, 0]) if model_class is BermoForSequenceClassification else torch.ones(4, 9).long()
        )
        model(**batch(), labels=labels).loss.backward()
        return {name: parameter.grad for name, parameter in model.named_parameters()}

    plain, checkpointed = gradients(False), gradients(True)
    assert plain["bert.layer_mix.weights"].abs().min() > 0  # every depth receives a gradient
    for name, gradient in plain.items():
        torch.testing.assert_close(checkpointed[name], gradient, rtol=1e-5, atol=1e-7, msg=name)


def test_torch_compile_matches_eager():
    model = with_mix(tiny_model(), [0.2, -0.4, 0.7]).eval()
    compiled = torch.compile(model, backend="aot_eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(**batch()).logits, model(**batch()).logits)
    model.train()
    compiled(**batch(), labels=torch.tensor([0, 1, 1, 0])).loss.backward()
    assert model.bert.layer_mix.weights.grad.abs().min() > 0


def reference_to_state(output) -> weakref.ref:
    """A weak reference to a depth's hidden state (transformers 4.57's layers return it in a tuple)."""
    return weakref.ref(output[0] if isinstance(output, tuple) else output)


def depths_alive_when_encoder_returns(model, **forward_kwargs) -> list[bool]:
    """For each depth, whether anything still references its output when the encoder has finished."""
    refs, alive = [], []
    for source in [model.embeddings, *model.encoder.layer]:
        source.register_forward_hook(lambda module, args, output: refs.append(reference_to_state(output)))
    model.encoder.register_forward_hook(lambda *_: alive.extend(ref() is not None for ref in refs))
    with torch.no_grad():
        model(**batch(), **forward_kwargs)
    return alive


@pytest.mark.parametrize("first_token_only", [True, False])
def test_no_depth_outlives_berts_own_use_of_it_without_gradients(first_token_only):
    """Inference keeps no (batch, seq, hidden) depth alive longer than BertModel itself does."""
    bermo = tiny_model(BermoModel, num_hidden_layers=4).eval()
    bert = BertModel(BertConfig(**tiny_config_kwargs(num_hidden_layers=4))).eval()
    expected = depths_alive_when_encoder_returns(bert)
    assert expected.count(False) >= 3  # BERT frees the intermediate layers' outputs
    actual = depths_alive_when_encoder_returns(bermo, mix_first_token_only=first_token_only)
    assert all(theirs for ours, theirs in zip(actual, expected, strict=True) if ours), (actual, expected)


def test_first_token_mode_does_not_retain_full_depths_for_backward():
    """With gradients, the first-token mix saves (batch, hidden) copies, not whole depths."""
    model = tiny_model(BermoModel, num_hidden_layers=2)
    refs = []
    model.encoder.layer[-1].register_forward_hook(lambda module, args, output: refs.append(reference_to_state(output)))
    outputs = model(**batch(), mix_first_token_only=True)
    pooled = outputs.pooler_output
    del outputs
    assert refs[0]() is None  # BERT's pooler alone would not keep the last layer either
    pooled.sum().backward()


class CountingTask(Dataset):
    """Label 1 when token 7 occurs in the sequence: learnable by a tiny model in a few steps."""

    def __init__(self, size=64, length=8):
        generator = torch.Generator().manual_seed(0)
        self.input_ids = torch.randint(1, 100, (size, length), generator=generator)
        self.input_ids[: size // 2, 3] = 7
        self.input_ids[size // 2 :][self.input_ids[size // 2 :] == 7] = 8
        self.labels = (self.input_ids == 7).any(-1).long()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"input_ids": self.input_ids[index], "labels": self.labels[index]}


def test_trainer_steps_lower_the_loss_and_move_every_mix_parameter(tmp_path):
    model = tiny_model(num_labels=2)
    start = {name: p.detach().clone() for name, p in model.bert.layer_mix.named_parameters()}
    data = CountingTask()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=30,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        logging_steps=5,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=data)
    initial_loss = trainer.evaluate(data)["eval_loss"]
    trainer.train()
    assert trainer.evaluate(data)["eval_loss"] < initial_loss
    for name, parameter in model.bert.layer_mix.named_parameters():
        moved = (parameter.detach() - start[name]).abs()
        assert (moved > 0).all(), f"{name} did not move: {parameter}"
