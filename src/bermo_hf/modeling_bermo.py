"""BERMo models: encoders whose task heads read a learned scalar mix of every depth.

This file is shipped beside the weights of every saved BERMo model and runs under ``trust_remote_code=True`` on
machines without ``bermo_hf``: it imports ``torch``, ``transformers`` and ``configuration_bermo`` only, and uses only
APIs that transformers 4.57 and 5.x both have.

How the mix is computed: a BERMo base model (``BermoModel`` for BERT, ``BermoRobertaModel``, ...) is the family's own
base model with forward hooks on the modules whose outputs are its depths (the embeddings, then every layer) and one
on its *mix point*, where the family's head reads the last layer's sequence: the encoder's output for most families,
the input of the final norm for pre-norm ones (ModernBERT, XLM-R-XL). Each forward pass creates its own ``_MixCall``,
which the hooks find through a context variable (so threads sharing the model and calls nested inside a call each
feed their own sum), adds each depth as it is produced (without gradients no depth outlives its use), and puts the
mixed sequence at the mix point. Everything after it, pooler and task head included, is the family's own code: the
BERMo heads are the family's head classes, whose base model is replaced with the BERMo one. Heads that read only the
first token (sequence classification and multiple choice, where the family's head provably does) mix only that token.
"""

import functools
import inspect
import math
from contextvars import ContextVar
from typing import NamedTuple

import torch
from torch import nn
from transformers import PretrainedConfig
from transformers.models.albert import modeling_albert as albert
from transformers.models.bert import modeling_bert as bert
from transformers.models.camembert import modeling_camembert as camembert
from transformers.models.deberta import modeling_deberta as deberta
from transformers.models.deberta_v2 import modeling_deberta_v2 as deberta_v2
from transformers.models.distilbert import modeling_distilbert as distilbert
from transformers.models.electra import modeling_electra as electra
from transformers.models.modernbert import modeling_modernbert as modernbert
from transformers.models.mpnet import modeling_mpnet as mpnet
from transformers.models.roberta import modeling_roberta as roberta
from transformers.models.xlm_roberta import modeling_xlm_roberta as xlm_roberta
from transformers.models.xlm_roberta_xl import modeling_xlm_roberta_xl as xlm_roberta_xl

from .configuration_bermo import (
    BermoAlbertConfig,
    BermoCamembertConfig,
    BermoConfig,
    BermoDebertaConfig,
    BermoDebertaV2Config,
    BermoDistilBertConfig,
    BermoElectraConfig,
    BermoModernBertConfig,
    BermoMPNetConfig,
    BermoRobertaConfig,
    BermoXLMRobertaConfig,
    BermoXLMRobertaXLConfig,
)

# Share of the mix that the last depth starts with under `layer_mix_init="last"`.
LAST_DEPTH_INITIAL_SHARE = 0.9
# Keyword arguments of `from_pretrained` that say where and how to read a checkpoint's files.
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "proxies", "revision", "subfolder", "token")


class BermoLayerMix(nn.Module):
    r"""
    ELMo-style scalar mix of `num_depths` tensors of the same shape:

        mixed = gamma * sum_j softmax(weights)_j * h_j

    `weights` holds one scalar per depth (1-D), `gamma` one scale (0-D). The softmax is computed in float32 whatever
    the parameters' dtype, and its result cast to the activations' dtype. The sum is taken on the device of `weights`;
    the result is returned on the device of the last depth, where the model's own last layer would be.

    Args:
        num_depths (`int`): how many tensors are mixed.
        init (`str`, defaults to `"uniform"`): `"uniform"` (weights all zero, an even mix) or `"last"` (the last depth
            starts with 90% of the mass).
        dropout (`float`, defaults to 0.0): layer dropout in [0, 1): in training, each depth is left out of the
            softmax with this probability (never all of them).
        layer_norm (`bool`, defaults to `False`): normalize each depth before mixing, per sequence over its real
            tokens (ELMo's `do_layer_norm`).

    Example:

    ```python
    >>> mix = BermoLayerMix(3)
    >>> mixed = mix([h0, h1, h2])          # tensors of shape (batch, seq, hidden)
    >>> running = mix.start()              # or one depth at a time
    >>> for h in (h0, h1, h2):
    ...     running.add(h)
    >>> mixed = running.result()
    ```
    """

    def __init__(self, num_depths: int, init: str = "uniform", dropout: float = 0.0, layer_norm: bool = False):
        super().__init__()
        if not isinstance(num_depths, int) or isinstance(num_depths, bool) or num_depths < 1:
            raise ValueError(f"num_depths={num_depths!r} must be a positive int.")
        self.num_depths = num_depths
        self.init = init
        self.dropout = dropout
        self.layer_norm = layer_norm
        self.weights = nn.Parameter(self.initial_weights())
        self.gamma = nn.Parameter(torch.ones(()))

    @classmethod
    def from_config(cls, config) -> "BermoLayerMix":
        """The mix a BERMo configuration describes (`num_mix_depths`, `layer_mix_init`, `layer_mix_dropout`,
        `layer_mix_layer_norm`)."""
        return cls(
            config.num_mix_depths,
            init=config.layer_mix_init,
            dropout=config.layer_mix_dropout,
            layer_norm=config.layer_mix_layer_norm,
        )

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
        """Begins a running mix: `add()` each depth in order, then `result()`. `attention_mask` (`(batch, seq)`, 1
        for real tokens) is used by the layer norm only; with `first_token_only`, only position 0 of each depth is
        mixed.

        The weights and gamma are read through a call of the module (`forward()` without depths), so that the hooks
        that place or load them (accelerate's `device_map`, offloading) run first."""
        return RunningMix(self, self(), attention_mask, first_token_only)

    def coefficients(self) -> torch.Tensor:
        """What the mix applies, as one float32 vector of `num_depths + 1`: `normalized_weights()` then `gamma`."""
        return torch.cat([self.normalized_weights(), self.gamma.float().reshape(1)])

    def forward(
        self,
        depth_states: list[torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        first_token_only: bool = False,
    ) -> torch.Tensor:
        """Mixes `num_depths` tensors of shape `(batch, seq, hidden)` (only position 0 of each with
        `first_token_only`) and returns the mixed tensor. Without `depth_states`, returns `coefficients()`."""
        if depth_states is None:
            return self.coefficients()
        mix = RunningMix(self, self.coefficients(), attention_mask, first_token_only)
        for state in depth_states:
            mix.add(state)
        return mix.result()

    def extra_repr(self) -> str:
        return f"num_depths={self.num_depths}, init={self.init!r}, dropout={self.dropout}, layer_norm={self.layer_norm}"


class RunningMix:
    """`gamma * sum_j s_j * h_j`, fed one depth at a time: a depth is added as soon as it exists and is then free to
    go. Made by `BermoLayerMix.start()` from the mix's `coefficients()`; one per forward pass, never shared."""

    def __init__(
        self,
        mix: BermoLayerMix,
        coefficients: torch.Tensor,
        attention_mask: torch.Tensor | None,
        first_token_only: bool,
    ):
        if mix.layer_norm and attention_mask is not None and attention_mask.dim() != 2:
            shape = tuple(attention_mask.shape)
            raise ValueError(f"layer_mix_layer_norm needs a (batch, seq) attention_mask of 0/1, got shape {shape}.")
        self.num_depths = mix.num_depths
        self.layer_norm = mix.layer_norm
        self.weights, self.gamma = coefficients[:-1], coefficients[-1]
        self.attention_mask = attention_mask
        self.first_token_only = first_token_only
        self.depths_added = 0
        self.total = None
        self.output_device = None

    def add(self, state: torch.Tensor) -> None:
        """Adds `s_j * h_j` for the next depth `j`."""
        if self.depths_added == self.num_depths:
            raise ValueError(f"the layer mix has {self.num_depths} depths and received one more.")
        if (self.first_token_only or self.layer_norm) and state.dim() != 3:
            raise ValueError(
                f"the layer mix received a depth of shape {tuple(state.shape)}: mixing the first token only or "
                "layer_mix_layer_norm needs padded (batch, seq, hidden) states, not unpadded ones."
            )
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
    """What the hooks of one base-model forward pass feed: the pass's depth sources in order, their running mix, and
    the mix point where the result goes.

    Without a gradient every depth goes into the running sum at once. With one, the depths are alive anyway (autograd
    keeps them for backward) and are summed at the mix point: outside any gradient-checkpointed region, so that a
    recomputation never replays the mix."""

    def __init__(self, model: "BermoBaseModelMixin", mix: RunningMix):
        self.model = model
        self.sources = model._depth_sources()
        self.mix_point = model._mix_point()
        self.mix = mix
        self.received = 0
        self.deferred = [] if torch.is_grad_enabled() else None
        self.mixed = None
        self.unmixed = None  # what the family's own code had at the mix point

    def receive(self, source: nn.Module, output) -> None:
        if self.received == len(self.sources) or source is not self.sources[self.received]:
            return  # a module of this model called on its own, from inside the pass: not one of the pass's depths
        self.received += 1
        state = self.model._depth_state(output)
        if self.deferred is None:
            self.mix.add(state)
        else:
            self.deferred.append(state)

    def ready_to_mix(self, module: nn.Module) -> bool:
        """Whether `module` running now is this pass's mix point, after every depth."""
        return module is self.mix_point and self.mixed is None and self.received == len(self.sources)

    def finish(self, unmixed: torch.Tensor) -> torch.Tensor:
        for state in self.deferred or ():
            self.mix.add(state)
        self.deferred = None
        self.unmixed = unmixed
        self.mixed = self.mix.result()
        return self.mixed


# Per-call state: the `_MixCall` of the innermost forward pass in progress, and the base model whose next pass a head
# asked to mix the first token only. A context variable gives every thread its own, and a nested call restores its
# caller's on the way out, so threads sharing a model and calls nested inside a call never see each other's state.
# torch.compile cannot trace a ContextVar: while it traces, a plain stack serves (dynamo traces in one thread at a
# time, and a compiled graph keeps no Python state when it runs).
class _CallState:
    def __init__(self, name: str):
        self.variable = ContextVar(name, default=None)
        self.traced = []

    def enter(self, value):
        if torch.compiler.is_compiling():
            self.traced.append(value)
            return None
        return self.variable.set(value)

    def leave(self, token) -> None:
        if token is None:
            self.traced.pop()
        else:
            self.variable.reset(token)

    def current(self):
        if torch.compiler.is_compiling():
            return self.traced[-1] if self.traced else None
        return self.variable.get()


_ACTIVE_CALL = _CallState("bermo_active_mix_call")
_FIRST_TOKEN_ONLY_FOR = _CallState("bermo_first_token_only_for")


def _receive_depth(module: nn.Module, args, output) -> None:
    call = _ACTIVE_CALL.current()
    if call is not None:
        call.receive(module, output)


def _mix_into_output(module: nn.Module, args, output):
    """Forward hook on an output mix point: its output's sequence (and, for DeBERTa, whose base model reads it from
    there, the last entry of its hidden states) becomes the mix."""
    call = _ACTIVE_CALL.current()
    if call is None or not call.ready_to_mix(module):
        return None
    if isinstance(output, tuple):
        mixed = call.finish(output[0])
        rest = list(output[1:])
        if call.model._mix_replaces_last_hidden_state_too and rest and isinstance(rest[0], tuple):
            rest[0] = tuple(rest[0][:-1]) + (mixed,)
        return (mixed, *rest)
    mixed = call.finish(output.last_hidden_state)
    output.last_hidden_state = mixed
    if call.model._mix_replaces_last_hidden_state_too and output.hidden_states:
        output.hidden_states = tuple(output.hidden_states[:-1]) + (mixed,)
    return output


def _mix_into_input(module: nn.Module, args, kwargs):
    """Forward pre-hook on an input mix point (a pre-norm family's final norm): the norm reads the mix."""
    call = _ACTIVE_CALL.current()
    if call is None or not call.ready_to_mix(module):
        return None
    if args:
        return (call.finish(args[0]), *args[1:]), kwargs
    name = next(iter(kwargs))
    return args, {**kwargs, name: call.finish(kwargs[name])}


class BermoMixin:
    """What every BERMo class adds to the family class it extends: the mix's weight initialization, loading that
    never re-initializes a trained mix, `save_pretrained` with an `auto_map` for remote code, and `layer_weights()`.
    """

    # The heads take `**kwargs` for the family's own pass-through arguments, not for a loss normalizer: without this,
    # the Trainer would skip its own averaging of the loss over gradient-accumulation steps and processes.
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        if isinstance(module, BermoLayerMix):
            # Only a mix missing from the checkpoint starts afresh; a loaded one keeps its trained values.
            module.reset_parameters(keep_loaded=True)
        else:
            super()._init_weights(module)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Loads a BERMo checkpoint or a plain checkpoint of the family (all its weights reused; the mix starts as
        configured).

        Raises `ValueError` when a BERMo checkpoint's mix has a different number of depths than the configuration,
        rather than re-initializing it."""
        # The depth counts are compared only once the weights did not fit, so that a load that succeeds reads the
        # checkpoint's configuration once, as the family's own classes do.
        output_loading_info = kwargs.pop("output_loading_info", False)
        try:
            model, loading_info = super().from_pretrained(
                pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
            )
        except RuntimeError:
            _check_mix_depths(cls, pretrained_model_name_or_path, kwargs)
            raise
        if any(_key_name(entry).endswith("layer_mix.weights") for entry in loading_info["mismatched_keys"]):
            # `ignore_mismatched_sizes=True` re-initialized the mix: refuse, naming both counts.
            _check_mix_depths(cls, pretrained_model_name_or_path, kwargs)
            raise ValueError(
                f"{pretrained_model_name_or_path}: the checkpoint's layer_mix.weights does not fit the configuration's "
                "depths; a BERMo mix is never re-initialized silently."
            )
        return (model, loading_info) if output_loading_info else model

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Saves like any `PreTrainedModel` (weights, configuration, code files; no model card: `bermo_hf` writes that
        with an explicit `write_model_card`), with an `auto_map` that names every BERMo Auto class of the family, so
        the folder loads with `trust_remote_code=True` through each of them."""
        self.config.auto_map = auto_map_of(family_of(self.config.model_type))
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


def _key_name(entry) -> str:
    """A loading report's key: transformers 4.57 lists names, 5.x `(name, checkpoint shape, model shape)`."""
    return entry if isinstance(entry, str) else entry[0]


def _check_mix_depths(model_class, pretrained_model_name_or_path, kwargs) -> None:
    """Compares the depth count of a BERMo checkpoint's mix with the one the model is about to be built with."""
    config_class = model_class.config_class
    hub_kwargs = {name: kwargs[name] for name in _HUB_KWARGS if name in kwargs}
    try:
        checkpoint_dict, _ = PretrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
    except OSError:
        return  # from_pretrained reports a missing checkpoint itself
    if checkpoint_dict.get("model_type") != config_class.model_type:
        return  # a plain checkpoint of the family has no mix yet
    checkpoint = config_class.from_dict(checkpoint_dict)
    config = kwargs.get("config")
    if isinstance(config, (str, bytes)) or hasattr(config, "__fspath__"):
        config = config_class.from_pretrained(config, **hub_kwargs)
    if not isinstance(config, PretrainedConfig):
        overrides = {
            key: kwargs[key] for key in ("num_hidden_layers", "n_layers", "include_embeddings") if key in kwargs
        }
        config = config_class.from_dict({**checkpoint_dict, **overrides})
    include_embeddings = getattr(config, "include_embeddings", True)
    model_depths = config.num_hidden_layers + int(include_embeddings)
    if model_depths != checkpoint.num_mix_depths:
        prefix = model_class.base_model_prefix
        raise ValueError(
            f"{pretrained_model_name_or_path}: the checkpoint's {prefix}.layer_mix.weights has "
            f"{checkpoint.num_mix_depths} depths, but the configuration asks for {model_depths} (num_hidden_layers="
            f"{config.num_hidden_layers}, include_embeddings={include_embeddings}). Load it with the checkpoint's own "
            "num_hidden_layers and include_embeddings; a BERMo mix is never re-initialized silently."
        )


class BermoBaseModelMixin(BermoMixin):
    """Turns a family's base model into its BERMo base model: the outputs are read from the layer mix.

    `last_hidden_state` is the mixed sequence `gamma * sum_j softmax(w)_j * h_j` (for pre-norm families, the final
    norm applied to the mix of the raw depths), and whatever the family computes from it (a pooler) follows.
    `hidden_states` (when asked) are the family's own per-depth outputs, as the plain model returns them. The weights
    are the family's plus `layer_mix.weights` and `layer_mix.gamma`.

    A family's layout is told by three methods that subclasses override where it differs from BERT's:
    `_depth_sources()`, `_mix_point()` and `_depth_state()`.
    """

    # Whether the mix point's output also carries the last layer in its hidden states, read from there by the family.
    _mix_replaces_last_hidden_state_too = False
    # Whether the mix enters the mix point's output (an encoder) or its input (a final norm).
    _mix_enters_input = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        family_forward = family_model_class(cls).forward
        cls._attention_mask_position = list(inspect.signature(family_forward).parameters).index("attention_mask") - 1
        if "forward" not in cls.__dict__:
            cls.forward = _forward_with_signature_of(family_forward, BermoBaseModelMixin.forward)

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self._attach_layer_mix()

    @classmethod
    def built_like(cls, model: nn.Module) -> "BermoBaseModelMixin":
        """A new BERMo base model built as `model`, a plain base model of the family, was (same configuration, and a
        pooler where it has one). The family's head classes build their plain base model themselves; the BERMo head
        replaces it with this, so that the head's own code runs unchanged on the mix."""
        family_class = family_model_class(cls)
        if type(model) is not family_class:
            raise TypeError(f"{cls.__name__} replaces a {family_class.__name__}, not a {type(model).__name__}.")
        if "add_pooling_layer" in inspect.signature(family_class.__init__).parameters:
            return cls(model.config, add_pooling_layer=getattr(model, "pooler", None) is not None)
        return cls(model.config)

    def _attach_layer_mix(self) -> None:
        """Adds the mix and the hooks that feed it."""
        self.layer_mix = BermoLayerMix.from_config(self.config)
        for source in dict.fromkeys(self._depth_sources()):  # ALBERT's shared layers run several times: one hook
            source.register_forward_hook(_receive_depth)
        if self._mix_enters_input:
            self._mix_point().register_forward_pre_hook(_mix_into_input, with_kwargs=True)
        else:
            self._mix_point().register_forward_hook(_mix_into_output)

    def _depth_sources(self) -> list[nn.Module]:
        """The modules whose outputs are the mix's depths, in the order they run (one entry per run)."""
        embeddings = [self.embeddings] if self.config.include_embeddings else []
        return embeddings + list(self.encoder.layer)

    def _mix_point(self) -> nn.Module:
        """The module whose output (or input, with `_mix_enters_input`) becomes the mix."""
        return self.encoder

    @staticmethod
    def _depth_state(output) -> torch.Tensor:
        """A depth source's hidden state, from what it returned (a tensor, or a tuple holding it first)."""
        return output[0] if isinstance(output, tuple) else output

    def _plain_last_hidden_state(self, call: _MixCall) -> torch.Tensor:
        """What the plain family model returns as `last_hidden_state`, for `hidden_states` (see `forward`)."""
        if self._mix_enters_input:
            return self._mix_point().forward(call.unmixed)  # the family's final norm, on its own last layer
        return call.unmixed

    def forward(self, *args, mix_first_token_only: bool = False, **kwargs):
        r"""
        Runs the family's base model and mixes its depths. Takes the inputs of the family's base model, plus:

        mix_first_token_only (`bool`, *optional*, defaults to `False`):
            Mix only position 0: `last_hidden_state` then has sequence length 1. The task heads that read nothing
            else (sequence classification and multiple choice, where the family's head does) ask for this
            themselves.

        Returns what the family's base model returns, with `last_hidden_state` read from the mix.
        """
        first_token_only = mix_first_token_only or _FIRST_TOKEN_ONLY_FOR.current() is self
        position = self._attention_mask_position
        attention_mask = kwargs.get("attention_mask", args[position] if len(args) > position else None)
        call = _MixCall(self, self.layer_mix.start(attention_mask, first_token_only))
        first_token_request = _FIRST_TOKEN_ONLY_FOR.enter(None)  # for this pass only, not for calls nested in it
        token = _ACTIVE_CALL.enter(call)
        try:
            outputs = super().forward(*args, **kwargs)
        finally:
            _ACTIVE_CALL.leave(token)
            _FIRST_TOKEN_ONLY_FOR.leave(first_token_request)
        if call.mixed is None:
            raise RuntimeError(
                "BERMo's layer mix was not applied: the mix point never ran after every depth (was a module of the "
                "model replaced, or part of this forward pass run by a different tracing mode?). Refusing to return "
                "the plain model's output as if it were mixed."
            )
        return _restore_hidden_states(outputs, lambda: self._plain_last_hidden_state(call))


def _restore_hidden_states(outputs, plain_last_hidden_state):
    """Puts the plain model's own last entry back where transformers' output collection put the mix.

    transformers 5.x collects `hidden_states` with hooks and then ties the last entry to `last_hidden_state`, which
    is the mix here (opting out through `config.tie_last_hidden_states` exists only from 5.18, and would differ from
    the plain model for pre-norm families); DeBERTa builds its tuple from the encoder's, where the mix was put. So
    whatever the release, an entry of `hidden_states` that *is* the returned `last_hidden_state` is replaced with what
    the plain model has there: its own `last_hidden_state`. Works on a `ModelOutput` and on a tuple."""
    if isinstance(outputs, tuple):
        last = outputs[0]
        for index, field in enumerate(outputs[1:], start=1):
            if isinstance(field, tuple) and field and field[-1] is last:
                fields = list(outputs)
                fields[index] = tuple(field[:-1]) + (plain_last_hidden_state(),)
                outputs = tuple(fields)
        return outputs
    hidden_states = outputs.get("hidden_states")
    if hidden_states and hidden_states[-1] is outputs.last_hidden_state:
        outputs.hidden_states = tuple(hidden_states[:-1]) + (plain_last_hidden_state(),)
    return outputs


def family_model_class(cls: type) -> type:
    """The family's own class that a BERMo class extends (`BertModel` for `BermoModel`,
    `RobertaForSequenceClassification` for `BermoRobertaForSequenceClassification`): the plain baseline."""
    return next(base for base in cls.__mro__ if not issubclass(base, BermoMixin) and base is not object)


def _forward_with_signature_of(family_forward, bermo_forward):
    """`bermo_forward` under the family's signature and docstring, so that whatever inspects `forward` (the `Trainer`
    keeping the dataset columns it names, pipelines) sees the family's arguments."""

    @functools.wraps(family_forward)
    def forward(self, *args, **kwargs):
        return bermo_forward(self, *args, **kwargs)

    return forward


class BermoHeadMixin(BermoMixin):
    """Turns a family's task model into its BERMo task model: the family's head code runs unchanged on the mix.

    The family's `__init__` builds its plain base model, which is then replaced with the BERMo one
    (`bermo_base_class.built_like`). A head that reads only the first token of the sequence
    (`_mixes_first_token_only()`) has its base model mix only that token: same result, a fraction of the cost."""

    # The BERMo base model class of the family; its configuration class is this class's.
    bermo_base_class: type
    # Whether the family's head reads position 0 of the sequence and nothing else.
    _reads_first_token_only = False

    def __init_subclass__(cls, **kwargs):
        sets_own_config_class = "config_class" in cls.__dict__  # transformers 5's own hook sets it in every subclass
        super().__init_subclass__(**kwargs)
        if not sets_own_config_class:
            cls.config_class = cls.bermo_base_class.config_class
        if "forward" not in cls.__dict__:
            cls.forward = _forward_with_signature_of(family_model_class(cls).forward, BermoHeadMixin.forward)

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        plain_base_model = getattr(self, self.base_model_prefix)
        setattr(self, self.base_model_prefix, self.bermo_base_class.built_like(plain_base_model))

    def _mixes_first_token_only(self) -> bool:
        return self._reads_first_token_only

    def forward(self, *args, **kwargs):
        """The family head's forward pass, reading the mix."""
        token = _FIRST_TOKEN_ONLY_FOR.enter(self.base_model if self._mixes_first_token_only() else None)
        try:
            return super().forward(*args, **kwargs)
        finally:
            _FIRST_TOKEN_ONLY_FOR.leave(token)


# BERT


class BermoPreTrainedModel(BermoMixin, bert.BertPreTrainedModel):
    """Base class for BERT-based BERMo models of your own (as in bermo-hf 0.1): BERT's weight initialization and
    loading, plus the mix's. Build the body with `BermoModel(config)`."""

    config_class = BermoConfig


class BermoModel(BermoBaseModelMixin, bert.BertModel):
    """BERT whose outputs are read from a learned scalar mix of every depth (see [`BermoBaseModelMixin`]):
    `last_hidden_state` is the mixed sequence and `pooler_output` BERT's pooler on it."""

    config_class = BermoConfig


class BermoForSequenceClassification(BermoHeadMixin, bert.BertForSequenceClassification):
    """BERT's sequence classification head (pooler, dropout, linear) on the mixed first token. Regression when
    `num_labels == 1`, single- or multi-label classification otherwise, chosen as BERT does."""

    bermo_base_class = BermoModel
    _reads_first_token_only = True


class BermoForTokenClassification(BermoHeadMixin, bert.BertForTokenClassification):
    """BERT's token classification head on the mixed sequence."""

    bermo_base_class = BermoModel


class BermoForQuestionAnswering(BermoHeadMixin, bert.BertForQuestionAnswering):
    """BERT's extractive question answering head (span start and end logits) on the mixed sequence."""

    bermo_base_class = BermoModel


class BermoForMultipleChoice(BermoHeadMixin, bert.BertForMultipleChoice):
    """BERT's multiple-choice head (pooler, dropout, one score per choice) on the mixed first token."""

    bermo_base_class = BermoModel
    _reads_first_token_only = True


# RoBERTa, XLM-RoBERTa, CamemBERT: BERT's layout; the classification head reads h[:, 0], multiple choice the pooler.


class BermoRobertaModel(BermoBaseModelMixin, roberta.RobertaModel):
    """RoBERTa whose outputs are read from the layer mix (see [`BermoBaseModelMixin`])."""

    config_class = BermoRobertaConfig


class BermoRobertaForSequenceClassification(BermoHeadMixin, roberta.RobertaForSequenceClassification):
    """RoBERTa's classification head on the mixed first token."""

    bermo_base_class = BermoRobertaModel
    _reads_first_token_only = True


class BermoRobertaForTokenClassification(BermoHeadMixin, roberta.RobertaForTokenClassification):
    """RoBERTa's token classification head on the mixed sequence."""

    bermo_base_class = BermoRobertaModel


class BermoRobertaForQuestionAnswering(BermoHeadMixin, roberta.RobertaForQuestionAnswering):
    """RoBERTa's question answering head on the mixed sequence."""

    bermo_base_class = BermoRobertaModel


class BermoRobertaForMultipleChoice(BermoHeadMixin, roberta.RobertaForMultipleChoice):
    """RoBERTa's multiple-choice head (pooler on the first token) on the mix."""

    bermo_base_class = BermoRobertaModel
    _reads_first_token_only = True


class BermoXLMRobertaModel(BermoBaseModelMixin, xlm_roberta.XLMRobertaModel):
    """XLM-RoBERTa whose outputs are read from the layer mix (see [`BermoBaseModelMixin`])."""

    config_class = BermoXLMRobertaConfig


class BermoXLMRobertaForSequenceClassification(BermoHeadMixin, xlm_roberta.XLMRobertaForSequenceClassification):
    """XLM-RoBERTa's classification head on the mixed first token."""

    bermo_base_class = BermoXLMRobertaModel
    _reads_first_token_only = True


class BermoXLMRobertaForTokenClassification(BermoHeadMixin, xlm_roberta.XLMRobertaForTokenClassification):
    """XLM-RoBERTa's token classification head on the mixed sequence."""

    bermo_base_class = BermoXLMRobertaModel


class BermoXLMRobertaForQuestionAnswering(BermoHeadMixin, xlm_roberta.XLMRobertaForQuestionAnswering):
    """XLM-RoBERTa's question answering head on the mixed sequence."""

    bermo_base_class = BermoXLMRobertaModel


class BermoXLMRobertaForMultipleChoice(BermoHeadMixin, xlm_roberta.XLMRobertaForMultipleChoice):
    """XLM-RoBERTa's multiple-choice head (pooler on the first token) on the mix."""

    bermo_base_class = BermoXLMRobertaModel
    _reads_first_token_only = True


class BermoCamembertModel(BermoBaseModelMixin, camembert.CamembertModel):
    """CamemBERT whose outputs are read from the layer mix (see [`BermoBaseModelMixin`])."""

    config_class = BermoCamembertConfig


class BermoCamembertForSequenceClassification(BermoHeadMixin, camembert.CamembertForSequenceClassification):
    """CamemBERT's classification head on the mixed first token."""

    bermo_base_class = BermoCamembertModel
    _reads_first_token_only = True


class BermoCamembertForTokenClassification(BermoHeadMixin, camembert.CamembertForTokenClassification):
    """CamemBERT's token classification head on the mixed sequence."""

    bermo_base_class = BermoCamembertModel


class BermoCamembertForQuestionAnswering(BermoHeadMixin, camembert.CamembertForQuestionAnswering):
    """CamemBERT's question answering head on the mixed sequence."""

    bermo_base_class = BermoCamembertModel


class BermoCamembertForMultipleChoice(BermoHeadMixin, camembert.CamembertForMultipleChoice):
    """CamemBERT's multiple-choice head (pooler on the first token) on the mix."""

    bermo_base_class = BermoCamembertModel
    _reads_first_token_only = True


# XLM-RoBERTa-XL: pre-norm layers; the encoder's final LayerNorm reads the mix of the raw depths.


class BermoXLMRobertaXLModel(BermoBaseModelMixin, xlm_roberta_xl.XLMRobertaXLModel):
    """XLM-RoBERTa-XL whose outputs are read from the layer mix (see [`BermoBaseModelMixin`]): the raw depths are
    mixed, then the encoder's final LayerNorm applies."""

    config_class = BermoXLMRobertaXLConfig
    _mix_enters_input = True

    def _mix_point(self) -> nn.Module:
        return self.encoder.LayerNorm


class BermoXLMRobertaXLForSequenceClassification(BermoHeadMixin, xlm_roberta_xl.XLMRobertaXLForSequenceClassification):
    """XLM-RoBERTa-XL's classification head on the mixed first token."""

    bermo_base_class = BermoXLMRobertaXLModel
    _reads_first_token_only = True


class BermoXLMRobertaXLForTokenClassification(BermoHeadMixin, xlm_roberta_xl.XLMRobertaXLForTokenClassification):
    """XLM-RoBERTa-XL's token classification head on the mixed sequence."""

    bermo_base_class = BermoXLMRobertaXLModel


class BermoXLMRobertaXLForQuestionAnswering(BermoHeadMixin, xlm_roberta_xl.XLMRobertaXLForQuestionAnswering):
    """XLM-RoBERTa-XL's question answering head on the mixed sequence."""

    bermo_base_class = BermoXLMRobertaXLModel


class BermoXLMRobertaXLForMultipleChoice(BermoHeadMixin, xlm_roberta_xl.XLMRobertaXLForMultipleChoice):
    """XLM-RoBERTa-XL's multiple-choice head (pooler on the first token) on the mix."""

    bermo_base_class = BermoXLMRobertaXLModel
    _reads_first_token_only = True


# DistilBERT: `transformer.layer`; the heads read h[:, 0] (`pre_classifier`).


class BermoDistilBertModel(BermoBaseModelMixin, distilbert.DistilBertModel):
    """DistilBERT whose outputs are read from the layer mix (see [`BermoBaseModelMixin`])."""

    config_class = BermoDistilBertConfig

    def _depth_sources(self) -> list[nn.Module]:
        embeddings = [self.embeddings] if self.config.include_embeddings else []
        return embeddings + list(self.transformer.layer)

    def _mix_point(self) -> nn.Module:
        return self.transformer

    @staticmethod
    def _depth_state(output) -> torch.Tensor:
        # transformers 4.57's blocks return `(attentions, state)` when asked for attentions: the state comes last.
        return output[-1] if isinstance(output, tuple) else output


class BermoDistilBertForSequenceClassification(BermoHeadMixin, distilbert.DistilBertForSequenceClassification):
    """DistilBERT's classification head (`pre_classifier`, classifier) on the mixed first token."""

    bermo_base_class = BermoDistilBertModel
    _reads_first_token_only = True


class BermoDistilBertForTokenClassification(BermoHeadMixin, distilbert.DistilBertForTokenClassification):
    """DistilBERT's token classification head on the mixed sequence."""

    bermo_base_class = BermoDistilBertModel


class BermoDistilBertForQuestionAnswering(BermoHeadMixin, distilbert.DistilBertForQuestionAnswering):
    """DistilBERT's question answering head on the mixed sequence."""

    bermo_base_class = BermoDistilBertModel


class BermoDistilBertForMultipleChoice(BermoHeadMixin, distilbert.DistilBertForMultipleChoice):
    """DistilBERT's multiple-choice head on the mixed first token."""

    bermo_base_class = BermoDistilBertModel
    _reads_first_token_only = True


# ELECTRA: depth 0 is the projected embedding output when `embedding_size != hidden_size`; no pooler.


class BermoElectraModel(BermoBaseModelMixin, electra.ElectraModel):
    """ELECTRA whose outputs are read from the layer mix (see [`BermoBaseModelMixin`]). Depth 0 is the embedding
    output as the encoder receives it (after `embeddings_project`, where there is one)."""

    config_class = BermoElectraConfig

    def _depth_sources(self) -> list[nn.Module]:
        embeddings = getattr(self, "embeddings_project", self.embeddings)
        return ([embeddings] if self.config.include_embeddings else []) + list(self.encoder.layer)


class BermoElectraForSequenceClassification(BermoHeadMixin, electra.ElectraForSequenceClassification):
    """ELECTRA's classification head on the mixed first token."""

    bermo_base_class = BermoElectraModel
    _reads_first_token_only = True


class BermoElectraForTokenClassification(BermoHeadMixin, electra.ElectraForTokenClassification):
    """ELECTRA's token classification head on the mixed sequence."""

    bermo_base_class = BermoElectraModel


class BermoElectraForQuestionAnswering(BermoHeadMixin, electra.ElectraForQuestionAnswering):
    """ELECTRA's question answering head on the mixed sequence."""

    bermo_base_class = BermoElectraModel


class BermoElectraForMultipleChoice(BermoHeadMixin, electra.ElectraForMultipleChoice):
    """ELECTRA's multiple-choice head (its sequence summary) on the mix: of the first token only when
    `config.summary_type == "first"`, of the whole sequence for the other summaries."""

    bermo_base_class = BermoElectraModel

    def _mixes_first_token_only(self) -> bool:
        return self.config.summary_type == "first"


# DeBERTa v1 and v2/v3: the base model reads the last layer from the encoder's hidden states, where the mix goes too.


class BermoDebertaModel(BermoBaseModelMixin, deberta.DebertaModel):
    """DeBERTa whose outputs are read from the layer mix (see [`BermoBaseModelMixin`])."""

    config_class = BermoDebertaConfig
    _mix_replaces_last_hidden_state_too = True


class BermoDebertaForSequenceClassification(BermoHeadMixin, deberta.DebertaForSequenceClassification):
    """DeBERTa's `ContextPooler` and classifier on the mixed first token."""

    bermo_base_class = BermoDebertaModel
    _reads_first_token_only = True


class BermoDebertaForTokenClassification(BermoHeadMixin, deberta.DebertaForTokenClassification):
    """DeBERTa's token classification head on the mixed sequence."""

    bermo_base_class = BermoDebertaModel


class BermoDebertaForQuestionAnswering(BermoHeadMixin, deberta.DebertaForQuestionAnswering):
    """DeBERTa's question answering head on the mixed sequence."""

    bermo_base_class = BermoDebertaModel


class BermoDebertaV2Model(BermoBaseModelMixin, deberta_v2.DebertaV2Model):
    """DeBERTa v2/v3 whose outputs are read from the layer mix (see [`BermoBaseModelMixin`]). With a convolution
    (`conv_kernel_size > 0`), depth 1 is its output, as in the family's own hidden states."""

    config_class = BermoDebertaV2Config
    _mix_replaces_last_hidden_state_too = True

    def _depth_sources(self) -> list[nn.Module]:
        layers = list(self.encoder.layer)
        if self.encoder.conv is not None:  # applied to the first layer's output, which it replaces
            layers[0] = self.encoder.conv
        return ([self.embeddings] if self.config.include_embeddings else []) + layers


class BermoDebertaV2ForSequenceClassification(BermoHeadMixin, deberta_v2.DebertaV2ForSequenceClassification):
    """DeBERTa v2/v3's `ContextPooler` and classifier on the mixed first token."""

    bermo_base_class = BermoDebertaV2Model
    _reads_first_token_only = True


class BermoDebertaV2ForTokenClassification(BermoHeadMixin, deberta_v2.DebertaV2ForTokenClassification):
    """DeBERTa v2/v3's token classification head on the mixed sequence."""

    bermo_base_class = BermoDebertaV2Model


class BermoDebertaV2ForQuestionAnswering(BermoHeadMixin, deberta_v2.DebertaV2ForQuestionAnswering):
    """DeBERTa v2/v3's question answering head on the mixed sequence."""

    bermo_base_class = BermoDebertaV2Model


class BermoDebertaV2ForMultipleChoice(BermoHeadMixin, deberta_v2.DebertaV2ForMultipleChoice):
    """DeBERTa v2/v3's multiple-choice head (`ContextPooler` on the first token) on the mix."""

    bermo_base_class = BermoDebertaV2Model
    _reads_first_token_only = True


# MPNet: BERT's layout (layers return a tuple).


class BermoMPNetModel(BermoBaseModelMixin, mpnet.MPNetModel):
    """MPNet whose outputs are read from the layer mix (see [`BermoBaseModelMixin`])."""

    config_class = BermoMPNetConfig


class BermoMPNetForSequenceClassification(BermoHeadMixin, mpnet.MPNetForSequenceClassification):
    """MPNet's classification head on the mixed first token."""

    bermo_base_class = BermoMPNetModel
    _reads_first_token_only = True


class BermoMPNetForTokenClassification(BermoHeadMixin, mpnet.MPNetForTokenClassification):
    """MPNet's token classification head on the mixed sequence."""

    bermo_base_class = BermoMPNetModel


class BermoMPNetForQuestionAnswering(BermoHeadMixin, mpnet.MPNetForQuestionAnswering):
    """MPNet's question answering head on the mixed sequence."""

    bermo_base_class = BermoMPNetModel


class BermoMPNetForMultipleChoice(BermoHeadMixin, mpnet.MPNetForMultipleChoice):
    """MPNet's multiple-choice head (pooler on the first token) on the mix."""

    bermo_base_class = BermoMPNetModel
    _reads_first_token_only = True


# ALBERT: depth 0 is the embeddings' projection to the hidden size; one shared layer group runs L times.


class BermoAlbertModel(BermoBaseModelMixin, albert.AlbertModel):
    """ALBERT whose outputs are read from the layer mix (see [`BermoBaseModelMixin`]). Each run of a shared layer
    group is a depth of its own: `num_hidden_layers` runs, as in ALBERT's hidden states for every released checkpoint
    (`inner_group_num=1`). With `inner_group_num > 1`, transformers 5 returns one hidden state per inner layer, so the
    mix's depth j is then not `hidden_states[j]`."""

    config_class = BermoAlbertConfig

    def _depth_sources(self) -> list[nn.Module]:
        encoder, layers = self.encoder, self.config.num_hidden_layers
        groups = [encoder.albert_layer_groups[int(i / (layers / self.config.num_hidden_groups))] for i in range(layers)]
        return ([encoder.embedding_hidden_mapping_in] if self.config.include_embeddings else []) + groups


class BermoAlbertForSequenceClassification(BermoHeadMixin, albert.AlbertForSequenceClassification):
    """ALBERT's pooler and classifier on the mixed first token."""

    bermo_base_class = BermoAlbertModel
    _reads_first_token_only = True


class BermoAlbertForTokenClassification(BermoHeadMixin, albert.AlbertForTokenClassification):
    """ALBERT's token classification head on the mixed sequence."""

    bermo_base_class = BermoAlbertModel


class BermoAlbertForQuestionAnswering(BermoHeadMixin, albert.AlbertForQuestionAnswering):
    """ALBERT's question answering head on the mixed sequence."""

    bermo_base_class = BermoAlbertModel


class BermoAlbertForMultipleChoice(BermoHeadMixin, albert.AlbertForMultipleChoice):
    """ALBERT's multiple-choice head (pooler on the first token) on the mix."""

    bermo_base_class = BermoAlbertModel
    _reads_first_token_only = True


# ModernBERT: pre-norm layers; `final_norm` reads the mix of the raw depths, then the task model's `head`.


class BermoModernBertModel(BermoBaseModelMixin, modernbert.ModernBertModel):
    """ModernBERT whose outputs are read from the layer mix (see [`BermoBaseModelMixin`]): the raw depths are
    mixed, then ModernBERT's `final_norm` applies."""

    config_class = BermoModernBertConfig
    _mix_enters_input = True

    def _depth_sources(self) -> list[nn.Module]:
        return ([self.embeddings] if self.config.include_embeddings else []) + list(self.layers)

    def _mix_point(self) -> nn.Module:
        return self.final_norm


class BermoModernBertForSequenceClassification(BermoHeadMixin, modernbert.ModernBertForSequenceClassification):
    """ModernBERT's head and classifier on the mix: of the first token only with `classifier_pooling="cls"` (on
    padded states), of the whole sequence with `"mean"`."""

    bermo_base_class = BermoModernBertModel

    def _mixes_first_token_only(self) -> bool:
        # transformers 4.57 and 5.0 unpad ModernBERT's states under flash attention: no first token to pick there.
        return self.config.classifier_pooling == "cls" and "flash" not in str(self.config._attn_implementation)


class BermoModernBertForTokenClassification(BermoHeadMixin, modernbert.ModernBertForTokenClassification):
    """ModernBERT's token classification head on the mixed sequence."""

    bermo_base_class = BermoModernBertModel


class BermoModernBertForQuestionAnswering(BermoHeadMixin, modernbert.ModernBertForQuestionAnswering):
    """ModernBERT's question answering head on the mixed sequence."""

    bermo_base_class = BermoModernBertModel


class BermoModernBertForMultipleChoice(BermoHeadMixin, modernbert.ModernBertForMultipleChoice):
    """ModernBERT's multiple-choice head on the whole mixed sequence (its `"cls"` pooling reads the first real token,
    which is not position 0 under left padding)."""

    bermo_base_class = BermoModernBertModel


class BermoTask(NamedTuple):
    """One row of `BERMO_TASKS`: a task, the Auto class that loads its models, their Hub pipeline task, and the end
    of their class names."""

    name: str  # the task's name in `bermo convert --task`
    auto_class: str
    pipeline_tag: str
    class_suffix: str


# The tasks every family has a BERMo class for: the base model first.
BERMO_TASKS = (
    BermoTask("feature-extraction", "AutoModel", "feature-extraction", "Model"),
    BermoTask(
        "sequence-classification",
        "AutoModelForSequenceClassification",
        "text-classification",
        "ForSequenceClassification",
    ),
    BermoTask(
        "token-classification", "AutoModelForTokenClassification", "token-classification", "ForTokenClassification"
    ),
    BermoTask("question-answering", "AutoModelForQuestionAnswering", "question-answering", "ForQuestionAnswering"),
    BermoTask("multiple-choice", "AutoModelForMultipleChoice", "multiple-choice", "ForMultipleChoice"),
)


def task_of(model_class_name: str) -> BermoTask:
    """The task of the BERMo class named `model_class_name` (also for a class loaded with `trust_remote_code=True`);
    the base model's for any other name."""
    heads = [task for task in BERMO_TASKS[1:] if model_class_name.endswith(task.class_suffix)]
    return heads[0] if heads else BERMO_TASKS[0]


class BermoFamily(NamedTuple):
    """One row of `BERMO_FAMILIES`: an encoder family and its BERMo classes."""

    name: str  # as the family's authors write it
    config_class: type
    models: tuple  # the base model first, then one class per head the family has

    @property
    def model_type(self) -> str:
        """The `model_type` of the plain family's checkpoints."""
        return self.config_class.family_model_type

    def model_class(self, task: str) -> type:
        """The family's BERMo class for `task` (a `BermoTask.name`); `ValueError` for a head the family lacks."""
        for model_class in self.models:
            if task_of(model_class.__name__).name == task:
                return model_class
        heads = ", ".join(task_of(model_class.__name__).name for model_class in self.models)
        raise ValueError(f"{self.name} has no {task} head; its BERMo models: {heads}.")


# The one table of BERMo families. `bermo_hf` registers the Auto classes from it, `save_pretrained` writes `auto_map`
# from it (so a saved folder loads with `trust_remote_code=True` through each Auto class), and the conversion, the
# model card and the command line read it. A new family is one row here, its classes above, and a test.
BERMO_FAMILIES = (
    BermoFamily(
        "BERT",
        BermoConfig,
        (
            BermoModel,
            BermoForSequenceClassification,
            BermoForTokenClassification,
            BermoForQuestionAnswering,
            BermoForMultipleChoice,
        ),
    ),
    BermoFamily(
        "RoBERTa",
        BermoRobertaConfig,
        (
            BermoRobertaModel,
            BermoRobertaForSequenceClassification,
            BermoRobertaForTokenClassification,
            BermoRobertaForQuestionAnswering,
            BermoRobertaForMultipleChoice,
        ),
    ),
    BermoFamily(
        "XLM-RoBERTa",
        BermoXLMRobertaConfig,
        (
            BermoXLMRobertaModel,
            BermoXLMRobertaForSequenceClassification,
            BermoXLMRobertaForTokenClassification,
            BermoXLMRobertaForQuestionAnswering,
            BermoXLMRobertaForMultipleChoice,
        ),
    ),
    BermoFamily(
        "XLM-RoBERTa-XL",
        BermoXLMRobertaXLConfig,
        (
            BermoXLMRobertaXLModel,
            BermoXLMRobertaXLForSequenceClassification,
            BermoXLMRobertaXLForTokenClassification,
            BermoXLMRobertaXLForQuestionAnswering,
            BermoXLMRobertaXLForMultipleChoice,
        ),
    ),
    BermoFamily(
        "CamemBERT",
        BermoCamembertConfig,
        (
            BermoCamembertModel,
            BermoCamembertForSequenceClassification,
            BermoCamembertForTokenClassification,
            BermoCamembertForQuestionAnswering,
            BermoCamembertForMultipleChoice,
        ),
    ),
    BermoFamily(
        "DistilBERT",
        BermoDistilBertConfig,
        (
            BermoDistilBertModel,
            BermoDistilBertForSequenceClassification,
            BermoDistilBertForTokenClassification,
            BermoDistilBertForQuestionAnswering,
            BermoDistilBertForMultipleChoice,
        ),
    ),
    BermoFamily(
        "ELECTRA",
        BermoElectraConfig,
        (
            BermoElectraModel,
            BermoElectraForSequenceClassification,
            BermoElectraForTokenClassification,
            BermoElectraForQuestionAnswering,
            BermoElectraForMultipleChoice,
        ),
    ),
    BermoFamily(
        "DeBERTa",
        BermoDebertaConfig,
        (
            BermoDebertaModel,
            BermoDebertaForSequenceClassification,
            BermoDebertaForTokenClassification,
            BermoDebertaForQuestionAnswering,
        ),
    ),
    BermoFamily(
        "DeBERTa-v2",
        BermoDebertaV2Config,
        (
            BermoDebertaV2Model,
            BermoDebertaV2ForSequenceClassification,
            BermoDebertaV2ForTokenClassification,
            BermoDebertaV2ForQuestionAnswering,
            BermoDebertaV2ForMultipleChoice,
        ),
    ),
    BermoFamily(
        "MPNet",
        BermoMPNetConfig,
        (
            BermoMPNetModel,
            BermoMPNetForSequenceClassification,
            BermoMPNetForTokenClassification,
            BermoMPNetForQuestionAnswering,
            BermoMPNetForMultipleChoice,
        ),
    ),
    BermoFamily(
        "ALBERT",
        BermoAlbertConfig,
        (
            BermoAlbertModel,
            BermoAlbertForSequenceClassification,
            BermoAlbertForTokenClassification,
            BermoAlbertForQuestionAnswering,
            BermoAlbertForMultipleChoice,
        ),
    ),
    BermoFamily(
        "ModernBERT",
        BermoModernBertConfig,
        (
            BermoModernBertModel,
            BermoModernBertForSequenceClassification,
            BermoModernBertForTokenClassification,
            BermoModernBertForQuestionAnswering,
            BermoModernBertForMultipleChoice,
        ),
    ),
)


def family_of(model_type: str) -> BermoFamily:
    """The family of a plain (`"roberta"`) or BERMo (`"bermo-roberta"`) `model_type`; `ValueError` naming the
    supported families for any other."""
    for family in BERMO_FAMILIES:
        if model_type in (family.model_type, family.config_class.model_type):
            return family
    supported = ", ".join(f"{family.name} ({family.model_type})" for family in BERMO_FAMILIES)
    raise ValueError(f"model type {model_type!r} is not supported by BERMo; supported families: {supported}.")


def _code_reference(cls: type) -> str:
    return f"{cls.__module__.rpartition('.')[2]}.{cls.__name__}"


def auto_map_of(family: BermoFamily) -> dict:
    """The `auto_map` of a saved folder of `family`: the Auto class of each of its BERMo classes -> its code."""
    return {"AutoConfig": _code_reference(family.config_class)} | {
        task_of(model_class.__name__).auto_class: _code_reference(model_class) for model_class in family.models
    }


for _family in BERMO_FAMILIES:
    for _model_class in _family.models:
        _model_class.register_for_auto_class(task_of(_model_class.__name__).auto_class)
