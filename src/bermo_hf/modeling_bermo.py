"""BERMo models: BERT whose task heads read a learned scalar mix of every depth.

This file is shipped beside the weights of every saved BERMo model and runs under ``trust_remote_code=True`` on
machines without ``bermo_hf``: it imports ``torch``, ``transformers`` and ``configuration_bermo`` only, and uses only
APIs that transformers 4.57 and 5.x both have.

How the mix is computed: ``BermoModel`` is ``transformers.BertModel`` with forward hooks on the embeddings and on every
encoder layer. Each forward pass creates its own ``_MixCall``, which the hooks find through a context variable (so
threads sharing the model and calls nested inside a call each feed their own sum), adds each depth as it is produced
(without gradients no depth outlives its use), and hands the mixed sequence to BERT's pooler in place of the last
layer's output. Sequence classification and multiple choice mix only the first token, the only one the pooler reads.
"""

import math
from contextvars import ContextVar
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from transformers import BertModel, PretrainedConfig
from transformers.modeling_outputs import (
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.models.bert.modeling_bert import BertPreTrainedModel

from .configuration_bermo import BermoConfig

# Share of the mix that the last depth starts with under `layer_mix_init="last"`.
LAST_DEPTH_INITIAL_SHARE = 0.9
# Keyword arguments of `from_pretrained` that say where and how to read a checkpoint's files.
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "proxies", "revision", "subfolder", "token")


class BermoLayerMix(nn.Module):
    r"""
    ELMo-style scalar mix of a BERT's depths:

        mixed = gamma * sum_j softmax(weights)_j * h_j

    `weights` holds one scalar per depth (1-D, `config.num_mix_depths`), `gamma` one scale (0-D). The softmax is
    computed in float32 whatever the parameters' dtype, and its result cast to the activations' dtype. The sum is
    taken on the device of `weights`; the result is returned on the device of the last depth, where BERT's own
    encoder output would be.
    """

    def __init__(self, config: BermoConfig):
        super().__init__()
        self.num_depths = config.num_mix_depths
        self.init = config.layer_mix_init
        self.dropout = config.layer_mix_dropout
        self.layer_norm = config.layer_mix_layer_norm
        self.weights = nn.Parameter(self.initial_weights())
        self.gamma = nn.Parameter(torch.ones(()))

    def initial_weights(self) -> torch.Tensor:
        """The documented start of `weights`: zeros (`"uniform"`), or the last depth holding 90% of the mass."""
        weights = torch.zeros(self.num_depths)
        if self.init == "last" and self.num_depths > 1:
            others_share = (1.0 - LAST_DEPTH_INITIAL_SHARE) / (self.num_depths - 1)
            weights[-1] = math.log(LAST_DEPTH_INITIAL_SHARE / others_share)
        return weights

    @torch.no_grad()
    def reset_parameters(self, keep_loaded: bool = False) -> None:
        """Sets `weights` to `initial_weights()` and `gamma` to 1.

        With `keep_loaded`, a parameter that transformers marked as loaded from a checkpoint (`_is_hf_initialized`)
        keeps its value: some releases (5.0-5.2) initialize modules whose parameters were already loaded."""
        for parameter, value in ((self.weights, self.initial_weights()), (self.gamma, torch.ones(()))):
            if parameter.device.type == "meta" or (keep_loaded and getattr(parameter, "_is_hf_initialized", False)):
                continue
            parameter.copy_(value)

    def normalized_weights(self) -> torch.Tensor:
        """`softmax(weights)` in float32; in training, layer dropout leaves depths out (never all of them)."""
        logits = self.weights.float()
        if self.training and self.dropout > 0:
            dropped = torch.rand_like(logits) < self.dropout
            kept_anyway = nn.functional.one_hot(
                torch.randint(self.num_depths, (), device=logits.device), self.num_depths
            ).bool()
            dropped = dropped & ~(kept_anyway & dropped.all())
            logits = logits.masked_fill(dropped, float("-inf"))
        return torch.softmax(logits, dim=0)

    def start(self, attention_mask: torch.Tensor | None = None, first_token_only: bool = False) -> "RunningMix":
        """Begins a running mix: `add()` each depth in order, then `result()`. Same as calling the module without
        `depth_states`."""
        return self(attention_mask=attention_mask, first_token_only=first_token_only)

    def forward(
        self,
        depth_states: list[torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        first_token_only: bool = False,
    ) -> "torch.Tensor | RunningMix":
        """Mixes `num_depths` tensors of shape `(batch, seq, hidden)` (only position 0 of each with
        `first_token_only`); `attention_mask` (`(batch, seq)`, 1 for real tokens) is used by the layer norm only.

        Without `depth_states`, returns a `RunningMix` to feed one depth at a time instead. Either way this is a call
        of the module, so the hooks that place or load its parameters (accelerate's `device_map`, offloading) run
        before the weights are read."""
        mix = RunningMix(self, attention_mask, first_token_only)
        if depth_states is None:
            return mix
        for state in depth_states:
            mix.add(state)
        return mix.result()

    def extra_repr(self) -> str:
        return f"num_depths={self.num_depths}, init={self.init!r}, dropout={self.dropout}, layer_norm={self.layer_norm}"


class RunningMix:
    """`gamma * sum_j s_j * h_j`, fed one depth at a time: a depth is added as soon as it exists and is then free to
    go. Made by `BermoLayerMix.start()`; one per forward pass, never shared."""

    def __init__(self, mix: BermoLayerMix, attention_mask: torch.Tensor | None, first_token_only: bool):
        if mix.layer_norm and attention_mask is not None and attention_mask.dim() != 2:
            shape = tuple(attention_mask.shape)
            raise ValueError(f"layer_mix_layer_norm needs a (batch, seq) attention_mask of 0/1, got shape {shape}.")
        self.num_depths = mix.num_depths
        self.layer_norm = mix.layer_norm
        self.weights = mix.normalized_weights()
        self.gamma = mix.gamma
        self.attention_mask = attention_mask
        self.first_token_only = first_token_only
        self.depths_added = 0
        self.total = None
        self.output_device = None

    def add(self, state: torch.Tensor) -> None:
        """Adds `s_j * h_j` for the next depth `j`."""
        if self.depths_added == self.num_depths:
            raise ValueError(f"the layer mix has {self.num_depths} depths and received one more.")
        self.output_device = state.device
        if self.layer_norm:
            state = _normalize_per_sequence(state, self.attention_mask, self.first_token_only)
        elif self.first_token_only:
            # A copy, so that the mix does not keep the depth's whole (batch, seq, hidden) storage alive for backward.
            state = state[:, :1].contiguous()
        # With the model split over devices (`device_map`), each depth joins the sum on the mix's device.
        state = state.to(self.weights.device)
        term = self.weights[self.depths_added].to(state.dtype) * state
        self.total = term if self.total is None else self.total + term
        self.depths_added += 1

    def result(self) -> torch.Tensor:
        """The mixed sequence, on the last depth's device."""
        if self.depths_added != self.num_depths:
            raise ValueError(f"the layer mix has {self.num_depths} depths but received {self.depths_added}.")
        mixed = self.gamma.to(self.total.device, self.total.dtype) * self.total
        return mixed.to(self.output_device)


def _normalize_per_sequence(
    state: torch.Tensor, attention_mask: torch.Tensor | None, first_token_only: bool, eps: float = 1e-12
) -> torch.Tensor:
    """ELMo's `do_layer_norm`, per sequence: mean and variance over its real tokens and all hidden units.

    Per sequence rather than over the whole batch, so that a prediction does not depend on its batch-mates."""
    values = state.float()
    if attention_mask is None:
        weights = torch.ones_like(values[..., :1])
    else:
        weights = attention_mask[:, :, None].to(values.device, values.dtype)
    count = weights.sum(dim=(1, 2), keepdim=True) * values.shape[-1]
    mean = (values * weights).sum(dim=(1, 2), keepdim=True) / count
    variance = (((values - mean) * weights) ** 2).sum(dim=(1, 2), keepdim=True) / count
    if first_token_only:
        values = values[:, :1]
    return ((values - mean) * torch.rsqrt(variance + eps)).to(state.dtype)


class _MixCall:
    """What the hooks of one `BermoModel` forward pass feed: its depth sources in order, and their running mix.

    Without a gradient every depth goes into the running sum at once. With one, the depths are alive anyway (autograd
    keeps them for backward) and are summed when the encoder is done: outside any gradient-checkpointed region, so
    that a recomputation never replays the mix."""

    def __init__(self, sources: list[nn.Module], encoder: nn.Module, mix: RunningMix):
        self.sources = sources
        self.encoder = encoder
        self.mix = mix
        self.received = 0
        self.deferred = [] if torch.is_grad_enabled() else None
        self.mixed = None
        self.unmixed = None

    def receive(self, source: nn.Module, state: torch.Tensor) -> None:
        if self.received == len(self.sources) or source is not self.sources[self.received]:
            return  # a module of this model called on its own, from inside the pass: not one of the pass's depths
        self.received += 1
        if self.deferred is None:
            self.mix.add(state)
        else:
            self.deferred.append(state)

    def finish(self) -> torch.Tensor:
        for state in self.deferred or ():
            self.mix.add(state)
        self.deferred = None
        self.mixed = self.mix.result()
        return self.mixed


# The `_MixCall` of the innermost forward pass in progress. A context variable gives every thread its own, and a
# nested call restores its caller's on the way out, so threads sharing a model and calls nested inside a call never
# see each other's sums. torch.compile cannot trace a ContextVar: while it traces, a plain stack serves (dynamo traces
# in one thread at a time, and a compiled graph keeps no Python state when it runs).
_ACTIVE_CALL: ContextVar["_MixCall | None"] = ContextVar("bermo_active_mix_call", default=None)
_TRACED_CALLS: list = []


def _is_compiling() -> bool:
    return torch.compiler.is_compiling()


def _enter(call: _MixCall):
    if _is_compiling():
        _TRACED_CALLS.append(call)
        return None
    return _ACTIVE_CALL.set(call)


def _leave(token) -> None:
    if token is None:
        _TRACED_CALLS.pop()
    else:
        _ACTIVE_CALL.reset(token)


def _innermost_call() -> "_MixCall | None":
    if _is_compiling():
        return _TRACED_CALLS[-1] if _TRACED_CALLS else None
    return _ACTIVE_CALL.get()


def _receive_depth(module: nn.Module, args, output) -> None:
    call = _innermost_call()
    if call is not None:
        call.receive(module, output[0] if isinstance(output, tuple) else output)


def _replace_encoder_output(module: nn.Module, args, output):
    call = _innermost_call()
    if call is None or module is not call.encoder:
        return None
    mixed = call.finish()
    if isinstance(output, tuple):
        call.unmixed = output[0]
        return (mixed,) + tuple(output[1:])
    call.unmixed = output.last_hidden_state
    output.last_hidden_state = mixed
    return output


def _restore_last_hidden_state(outputs, call: _MixCall) -> None:
    """Puts BERT's own last layer back where transformers' output collection put the mix.

    transformers 5.x collects `hidden_states` with hooks and then ties the last entry to `last_hidden_state`, which
    is the mix here (opting out through `config.tie_last_hidden_states` exists only from 5.18). Whatever the release,
    an entry that *is* the returned mix is replaced with what the plain model returns there: the encoder's output."""
    hidden_states = outputs.hidden_states
    if hidden_states and hidden_states[-1] is outputs.last_hidden_state:
        outputs.hidden_states = tuple(hidden_states[:-1]) + (call.unmixed,)


class BermoPreTrainedModel(BertPreTrainedModel):
    """Base class of the BERMo models: BERT's weight initialization and loading, plus the layer mix's."""

    config_class = BermoConfig
    base_model_prefix = "bert"
    # The heads take `**kwargs` for BERT's own pass-through arguments, not for a loss normalizer: without this, the
    # Trainer would skip its own averaging of the loss over gradient-accumulation steps and processes.
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, BermoLayerMix):
            # Only a mix missing from the checkpoint starts afresh; a loaded one keeps its trained values.
            module.reset_parameters(keep_loaded=True)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Loads a BERMo or a plain BERT checkpoint (BERT's weights are all reused; the mix starts as configured).

        Raises `ValueError` when a BERMo checkpoint's mix has a different number of depths than the configuration,
        rather than re-initializing it."""
        _check_mix_depths(cls, pretrained_model_name_or_path, kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Saves like any `PreTrainedModel` (weights, configuration, code files; no model card: `bermo_hf` writes that
        with an explicit `write_model_card`), with an `auto_map` that names every BERMo Auto class, so the folder
        loads with `trust_remote_code=True` through each of them."""
        self.config.auto_map = dict(AUTO_MAP)
        return super().save_pretrained(save_directory, *args, **kwargs)

    def layer_weights(self) -> dict:
        """The mix as plain numbers: `{"weights": softmax(w) per depth, "gamma": gamma}` (depth 0 is the embedding
        output when `config.include_embeddings`)."""
        return learned_layer_weights(self.base_model.layer_mix)


def learned_layer_weights(mix: nn.Module) -> dict:
    """`{"weights": softmax(w) per depth, "gamma": gamma}` as floats, without layer dropout, for `mix` (a
    `BermoLayerMix`, also one of a class loaded with `trust_remote_code=True`)."""
    with torch.no_grad():
        weights = torch.softmax(mix.weights.detach().float().cpu(), dim=0)
        return {"weights": [float(weight) for weight in weights], "gamma": float(mix.gamma.detach().float())}


def _check_mix_depths(model_class, pretrained_model_name_or_path, kwargs) -> None:
    """Compares the depth count of a BERMo checkpoint's mix with the one the model is about to be built with."""
    hub_kwargs = {name: kwargs[name] for name in _HUB_KWARGS if name in kwargs}
    try:
        checkpoint_config, _ = PretrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
    except OSError:
        return  # from_pretrained reports a missing checkpoint itself
    if checkpoint_config.get("model_type") != BermoConfig.model_type:
        return  # a BERT checkpoint has no mix yet
    checkpoint_depths = checkpoint_config["num_hidden_layers"] + int(checkpoint_config.get("include_embeddings", True))
    config = kwargs.get("config")
    if isinstance(config, (str, bytes)) or hasattr(config, "__fspath__"):
        config = model_class.config_class.from_pretrained(config, **hub_kwargs)
    if isinstance(config, PretrainedConfig):
        layers = config.num_hidden_layers
        include_embeddings = getattr(config, "include_embeddings", True)
    else:
        layers = kwargs.get("num_hidden_layers", checkpoint_config["num_hidden_layers"])
        include_embeddings = kwargs.get("include_embeddings", checkpoint_config.get("include_embeddings", True))
    model_depths = layers + int(include_embeddings)
    if model_depths != checkpoint_depths:
        raise ValueError(
            f"{pretrained_model_name_or_path}: the checkpoint's bert.layer_mix.weights has {checkpoint_depths} depths, "
            f"but the configuration asks for {model_depths} (num_hidden_layers={layers}, "
            f"include_embeddings={include_embeddings}). Load it with the checkpoint's own num_hidden_layers and "
            "include_embeddings; a BERMo mix is never re-initialized silently."
        )


class BermoModel(BermoPreTrainedModel, BertModel):
    r"""
    BERT whose outputs are read from a learned scalar mix of every depth.

    `last_hidden_state` is the mixed sequence `gamma * sum_j softmax(w)_j * h_j` and `pooler_output` BERT's pooler
    (dense + tanh on the first token) applied to it. `hidden_states` (when asked) are BERT's own per-depth outputs.
    The weights are BERT's plus `layer_mix.weights` and `layer_mix.gamma`.

    Args:
        config ([`BermoConfig`]): the model configuration.
        add_pooling_layer (`bool`, *optional*, defaults to `True`): whether to build BERT's pooler.
    """

    def __init__(self, config: BermoConfig, add_pooling_layer: bool = True):
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        self.layer_mix = BermoLayerMix(config)
        for source in self._depth_sources():
            source.register_forward_hook(_receive_depth)
        self.encoder.register_forward_hook(_replace_encoder_output)
        self.post_init()

    def _depth_sources(self) -> list[nn.Module]:
        """The modules whose outputs are the mix's depths, in order."""
        embeddings = [self.embeddings] if self.config.include_embeddings else []
        return embeddings + list(self.encoder.layer)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        mix_first_token_only: bool = False,
        **kwargs,
    ):
        r"""
        Runs BERT and mixes its depths. Takes the inputs of [`~transformers.BertModel.forward`], plus:

        mix_first_token_only (`bool`, *optional*, defaults to `False`):
            Mix only position 0, the one BERT's pooler reads: `last_hidden_state` then has sequence length 1. The
            sequence-classification and multiple-choice heads use this.

        Returns a `BaseModelOutputWithPoolingAndCrossAttentions` (a tuple when `return_dict=False`).
        """
        if return_dict is None:
            return_dict = self.config.return_dict
        for name, value in (("output_attentions", output_attentions), ("output_hidden_states", output_hidden_states)):
            if value is not None:
                kwargs[name] = value
        call = _MixCall(self._depth_sources(), self.encoder, self.layer_mix.start(attention_mask, mix_first_token_only))
        token = _enter(call)
        try:
            outputs = super().forward(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                inputs_embeds=inputs_embeds,
                return_dict=True,
                **kwargs,
            )
        finally:
            _leave(token)
        if call.mixed is None:
            raise RuntimeError(
                "BERMo's layer mix was not applied: the encoder's output never reached it (is the encoder replaced, or "
                "was part of this forward pass run by a different tracing mode?). Refusing to return BERT's plain "
                "last layer as if it were mixed."
            )
        _restore_last_hidden_state(outputs, call)
        return outputs if return_dict else outputs.to_tuple()


class BermoForSequenceClassification(BermoPreTrainedModel):
    """BERMo with BERT's sequence classification head (pooler, dropout, linear) on the mixed first token.

    Regression when `num_labels == 1`, single- or multi-label classification otherwise, chosen as BERT does."""

    def __init__(self, config: BermoConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.config = config
        self.bert = BermoModel(config)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        r"""
        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Class indices in `[0, num_labels)` (cross-entropy), floats for regression (`num_labels == 1`, MSE), or
            multi-hot floats for multi-label classification (BCE with logits).
        """
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            mix_first_token_only=True,
            **kwargs,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output))

        loss = None
        if labels is not None:
            if self.config.problem_type is None:
                if self.num_labels == 1:
                    self.config.problem_type = "regression"
                elif labels.dtype in (torch.long, torch.int):
                    self.config.problem_type = "single_label_classification"
                else:
                    self.config.problem_type = "multi_label_classification"
            if self.config.problem_type == "regression" and self.num_labels == 1:
                loss = MSELoss()(logits.squeeze(), labels.squeeze())
            elif self.config.problem_type == "regression":
                loss = MSELoss()(logits, labels)
            elif self.config.problem_type == "single_label_classification":
                loss = CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
            else:
                loss = BCEWithLogitsLoss()(logits, labels)

        output = SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return _maybe_tuple(output, return_dict, self.config)


class BermoForMultipleChoice(BermoPreTrainedModel):
    """BERMo with BERT's multiple-choice head: one score per choice from the pooled mixed first token."""

    def __init__(self, config: BermoConfig):
        super().__init__(config)
        self.bert = BermoModel(config)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        r"""
        Inputs have shape `(batch_size, num_choices, sequence_length)`.

        labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Index of the right choice, in `[0, num_choices)`.
        """
        num_choices = input_ids.shape[1] if input_ids is not None else inputs_embeds.shape[1]

        def flat(tensor):
            return None if tensor is None else tensor.view(-1, *tensor.shape[2:])

        outputs = self.bert(
            flat(input_ids),
            attention_mask=flat(attention_mask),
            token_type_ids=flat(token_type_ids),
            position_ids=flat(position_ids),
            inputs_embeds=flat(inputs_embeds),
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            mix_first_token_only=True,
            **kwargs,
        )
        logits = self.classifier(self.dropout(outputs.pooler_output)).view(-1, num_choices)
        loss = CrossEntropyLoss()(logits, labels) if labels is not None else None
        output = MultipleChoiceModelOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return _maybe_tuple(output, return_dict, self.config)


class BermoForTokenClassification(BermoPreTrainedModel):
    """BERMo with BERT's token classification head (dropout, linear) on the mixed sequence."""

    def __init__(self, config: BermoConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BermoModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Class index per token in `[0, num_labels)`; -100 marks tokens left out of the loss.
        """
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        logits = self.classifier(self.dropout(outputs.last_hidden_state))
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
        output = TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return _maybe_tuple(output, return_dict, self.config)


class BermoForQuestionAnswering(BermoPreTrainedModel):
    """BERMo with BERT's extractive question answering head: span start and end logits from the mixed sequence."""

    def __init__(self, config: BermoConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BermoModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ):
        r"""
        start_positions, end_positions (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Token indices of the answer span; positions past the sequence are clamped and left out of the loss.
        """
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        logits = self.qa_outputs(outputs.last_hidden_state)
        start_logits, end_logits = logits.split(1, dim=-1)
        start_logits = start_logits.squeeze(-1).contiguous()
        end_logits = end_logits.squeeze(-1).contiguous()

        total_loss = None
        if start_positions is not None and end_positions is not None:
            if start_positions.dim() > 1:
                start_positions = start_positions.squeeze(-1)
            if end_positions.dim() > 1:
                end_positions = end_positions.squeeze(-1)
            ignored_index = start_logits.size(1)
            start_positions = start_positions.clamp(0, ignored_index)
            end_positions = end_positions.clamp(0, ignored_index)
            loss_fct = CrossEntropyLoss(ignore_index=ignored_index)
            total_loss = (loss_fct(start_logits, start_positions) + loss_fct(end_logits, end_positions)) / 2

        output = QuestionAnsweringModelOutput(
            loss=total_loss,
            start_logits=start_logits,
            end_logits=end_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return _maybe_tuple(output, return_dict, self.config)


def _classifier_dropout(config: BermoConfig) -> float:
    return config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob


def _maybe_tuple(output, return_dict: bool | None, config: BermoConfig):
    if return_dict is None:
        return_dict = config.return_dict
    return output if return_dict else output.to_tuple()


class BermoTask(NamedTuple):
    """One row of `BERMO_TASKS`: a BERMo class, the Auto class that loads it and its Hub pipeline task."""

    name: str  # the task's name in `bermo convert --task`
    model_class: type
    auto_class: str
    pipeline_tag: str


# The one table of BERMo classes. `bermo_hf` registers the Auto classes from it, `save_pretrained` writes `auto_map`
# from it (so a saved folder loads with `trust_remote_code=True` through each of them), and the model card and
# `bermo convert --task` read it.
BERMO_TASKS = (
    BermoTask("feature-extraction", BermoModel, "AutoModel", "feature-extraction"),
    BermoTask(
        "sequence-classification",
        BermoForSequenceClassification,
        "AutoModelForSequenceClassification",
        "text-classification",
    ),
    BermoTask(
        "token-classification", BermoForTokenClassification, "AutoModelForTokenClassification", "token-classification"
    ),
    BermoTask("question-answering", BermoForQuestionAnswering, "AutoModelForQuestionAnswering", "question-answering"),
    BermoTask("multiple-choice", BermoForMultipleChoice, "AutoModelForMultipleChoice", "multiple-choice"),
)


def task_of(model_class_name: str) -> BermoTask:
    """The row of the BERMo class named `model_class_name` (also for a class loaded with `trust_remote_code=True`);
    the base model's row for any other name."""
    return next((task for task in BERMO_TASKS if task.model_class.__name__ == model_class_name), BERMO_TASKS[0])


def _code_reference(cls: type) -> str:
    return f"{cls.__module__.rpartition('.')[2]}.{cls.__name__}"


AUTO_MAP = {"AutoConfig": _code_reference(BermoConfig)} | {
    task.auto_class: _code_reference(task.model_class) for task in BERMO_TASKS
}
for _task in BERMO_TASKS:
    _task.model_class.register_for_auto_class(_task.auto_class)
