"""Configurations of BERMo: an encoder family's own configuration plus the settings of the layer mix.

This file is shipped beside the weights of every saved BERMo model and runs under
``trust_remote_code=True`` on machines without ``bermo_hf``: it imports ``transformers`` only.
"""

from transformers import (
    AlbertConfig,
    BertConfig,
    CamembertConfig,
    DebertaConfig,
    DebertaV2Config,
    DistilBertConfig,
    ElectraConfig,
    ModernBertConfig,
    MPNetConfig,
    RobertaConfig,
    XLMRobertaConfig,
    XLMRobertaXLConfig,
)

LAYER_MIX_INITS = ("uniform", "last")


class LayerMixConfigMixin:
    r"""
    The settings of BERMo's layer mix (Kodge & Roy, "BERMo: What can BERT learn from ELMo?", arXiv 2110.15802), added
    to an encoder family's configuration class. The task head reads a scalar mix of every depth instead of the last
    layer only:

        mixed = gamma * sum_j softmax(w)_j * h_j

    where ``h_0`` is the embedding output and ``h_1 .. h_L`` the layers' outputs. Every setting of the family is
    accepted unchanged, and the family's own ``config.json`` (e.g. ``model_type: "roberta"``) loads into its BERMo
    configuration.

    Args:
        include_embeddings (`bool`, *optional*, defaults to `True`):
            Whether the embedding output is depth 0 of the mix. The mix has `num_hidden_layers + 1` depths when
            `True`, `num_hidden_layers` when `False`.
        layer_mix_init (`str`, *optional*, defaults to `"uniform"`):
            Start of the mix weights: `"uniform"` (all zeros, an even mix, as ELMo and the paper) or `"last"` (the
            last depth starts with 90% of the mass, so a fresh model starts close to the plain family model).
        layer_mix_dropout (`float`, *optional*, defaults to 0.0):
            Layer dropout in [0, 1): during training each depth is left out of the softmax with this probability
            (as UDify's `ScalarMixWithDropout`); at least one depth is always kept.
        layer_mix_layer_norm (`bool`, *optional*, defaults to `False`):
            Whether each depth is normalized before mixing, as ELMo's `do_layer_norm`: mean and variance over the real
            (non-padding) tokens and all hidden units of each sequence.
        kwargs:
            The settings of the family's configuration class.

    Every BERMo configuration class sets `__init__ = LayerMixConfigMixin.__init__` in its own body: transformers 5
    turns a configuration class without an `__init__` of its own into a dataclass whose generated `__init__` would
    skip the mix's settings.
    """

    # The `model_type` of the plain family whose `config.json` this configuration also reads.
    family_model_type: str

    def __init__(
        self,
        include_embeddings: bool = True,
        layer_mix_init: str = "uniform",
        layer_mix_dropout: float = 0.0,
        layer_mix_layer_norm: bool = False,
        **kwargs,
    ):
        _check_bool("include_embeddings", include_embeddings)
        _check_bool("layer_mix_layer_norm", layer_mix_layer_norm)
        if layer_mix_init not in LAYER_MIX_INITS:
            allowed = ", ".join(map(repr, LAYER_MIX_INITS))
            raise ValueError(f"layer_mix_init={layer_mix_init!r} is not supported: use one of {allowed}.")
        if isinstance(layer_mix_dropout, bool) or not isinstance(layer_mix_dropout, (int, float)):
            raise ValueError(f"layer_mix_dropout={layer_mix_dropout!r} must be a number in [0, 1).")
        if not 0.0 <= layer_mix_dropout < 1.0:
            raise ValueError(f"layer_mix_dropout={layer_mix_dropout!r} is out of range: it must lie in [0, 1).")
        self.include_embeddings = include_embeddings
        self.layer_mix_init = layer_mix_init
        self.layer_mix_dropout = float(layer_mix_dropout)
        self.layer_mix_layer_norm = layer_mix_layer_norm
        super().__init__(**kwargs)

    @property
    def num_mix_depths(self) -> int:
        """Number of depths in the mix: the layers, plus the embedding output when it is included."""
        return self.num_hidden_layers + int(self.include_embeddings)

    @classmethod
    def from_family_config(cls, family_config, **mix_settings):
        """Builds a BERMo configuration from the family's own one: every setting is kept, `mix_settings` are added."""
        config_dict = family_config.to_dict()
        config_dict.pop("model_type", None)
        config_dict.pop("transformers_version", None)
        config_dict.update(mix_settings)
        return cls(**config_dict)

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        """Reads a configuration file; the plain family's is taken as a BERMo configuration with the default mix."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if config_dict.get("model_type") == cls.family_model_type:
            config_dict = {**config_dict, "model_type": cls.model_type}
        return config_dict, kwargs


def _check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be a bool (True or False).")


class BermoConfig(LayerMixConfigMixin, BertConfig):
    r"""
    Configuration of BERMo on BERT: a [`~transformers.BertConfig`] plus the layer mix's settings (see
    [`LayerMixConfigMixin`]). A plain BERT `config.json` (`model_type: "bert"`) loads into this class.

    Example:

    ```python
    >>> from bermo_hf import BermoConfig, BermoModel

    >>> config = BermoConfig(num_hidden_layers=6, layer_mix_init="last")
    >>> config.num_mix_depths
    7
    >>> model = BermoModel(config)
    ```
    """

    model_type = "bermo"
    family_model_type = "bert"
    __init__ = LayerMixConfigMixin.__init__

    @classmethod
    def from_bert_config(cls, bert_config: BertConfig, **mix_settings) -> "BermoConfig":
        """Builds a BERMo configuration from a BERT one: every BERT setting is kept, `mix_settings` are added."""
        return cls.from_family_config(bert_config, **mix_settings)


class BermoRobertaConfig(LayerMixConfigMixin, RobertaConfig):
    """A [`~transformers.RobertaConfig`] plus the layer mix's settings (see [`LayerMixConfigMixin`])."""

    model_type = "bermo-roberta"
    family_model_type = "roberta"
    __init__ = LayerMixConfigMixin.__init__


class BermoXLMRobertaConfig(LayerMixConfigMixin, XLMRobertaConfig):
    """An [`~transformers.XLMRobertaConfig`] plus the layer mix's settings (see [`LayerMixConfigMixin`])."""

    model_type = "bermo-xlm-roberta"
    family_model_type = "xlm-roberta"
    __init__ = LayerMixConfigMixin.__init__


class BermoXLMRobertaXLConfig(LayerMixConfigMixin, XLMRobertaXLConfig):
    """An [`~transformers.XLMRobertaXLConfig`] plus the layer mix's settings (see [`LayerMixConfigMixin`])."""

    model_type = "bermo-xlm-roberta-xl"
    family_model_type = "xlm-roberta-xl"
    __init__ = LayerMixConfigMixin.__init__


class BermoCamembertConfig(LayerMixConfigMixin, CamembertConfig):
    """A [`~transformers.CamembertConfig`] plus the layer mix's settings (see [`LayerMixConfigMixin`])."""

    model_type = "bermo-camembert"
    family_model_type = "camembert"
    __init__ = LayerMixConfigMixin.__init__


class BermoDistilBertConfig(LayerMixConfigMixin, DistilBertConfig):
    """A [`~transformers.DistilBertConfig`] plus the layer mix's settings (see [`LayerMixConfigMixin`])."""

    model_type = "bermo-distilbert"
    family_model_type = "distilbert"
    __init__ = LayerMixConfigMixin.__init__


class BermoElectraConfig(LayerMixConfigMixin, ElectraConfig):
    """An [`~transformers.ElectraConfig`] plus the layer mix's settings (see [`LayerMixConfigMixin`])."""

    model_type = "bermo-electra"
    family_model_type = "electra"
    __init__ = LayerMixConfigMixin.__init__


class BermoDebertaConfig(LayerMixConfigMixin, DebertaConfig):
    """A [`~transformers.DebertaConfig`] plus the layer mix's settings (see [`LayerMixConfigMixin`])."""

    model_type = "bermo-deberta"
    family_model_type = "deberta"
    __init__ = LayerMixConfigMixin.__init__


class BermoDebertaV2Config(LayerMixConfigMixin, DebertaV2Config):
    """A [`~transformers.DebertaV2Config`] (DeBERTa v2 and v3) plus the layer mix's settings (see
    [`LayerMixConfigMixin`])."""

    model_type = "bermo-deberta-v2"
    family_model_type = "deberta-v2"
    __init__ = LayerMixConfigMixin.__init__


class BermoMPNetConfig(LayerMixConfigMixin, MPNetConfig):
    """An [`~transformers.MPNetConfig`] plus the layer mix's settings (see [`LayerMixConfigMixin`])."""

    model_type = "bermo-mpnet"
    family_model_type = "mpnet"
    __init__ = LayerMixConfigMixin.__init__


class BermoAlbertConfig(LayerMixConfigMixin, AlbertConfig):
    """An [`~transformers.AlbertConfig`] plus the layer mix's settings (see [`LayerMixConfigMixin`]). The mix has a
    depth per layer call: ALBERT's shared layers count once for each time they run."""

    model_type = "bermo-albert"
    family_model_type = "albert"
    __init__ = LayerMixConfigMixin.__init__


class BermoModernBertConfig(LayerMixConfigMixin, ModernBertConfig):
    """A [`~transformers.ModernBertConfig`] plus the layer mix's settings (see [`LayerMixConfigMixin`]). The raw
    depths are mixed and ModernBERT's final norm applied to the mix."""

    model_type = "bermo-modernbert"
    family_model_type = "modernbert"
    __init__ = LayerMixConfigMixin.__init__


BERMO_CONFIG_CLASSES = (
    BermoConfig,
    BermoRobertaConfig,
    BermoXLMRobertaConfig,
    BermoXLMRobertaXLConfig,
    BermoCamembertConfig,
    BermoDistilBertConfig,
    BermoElectraConfig,
    BermoDebertaConfig,
    BermoDebertaV2Config,
    BermoMPNetConfig,
    BermoAlbertConfig,
    BermoModernBertConfig,
)
for _config_class in BERMO_CONFIG_CLASSES:
    _config_class.register_for_auto_class()
