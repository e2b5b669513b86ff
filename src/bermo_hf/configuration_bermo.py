"""Configuration of BERMo: a BERT configuration plus the settings of the layer mix.

This file is shipped beside the weights of every saved BERMo model and runs under
``trust_remote_code=True`` on machines without ``bermo_hf``: it imports ``transformers`` only.
"""

from transformers import BertConfig

LAYER_MIX_INITS = ("uniform", "last")


class BermoConfig(BertConfig):
    r"""
    Configuration of a BERMo model (Kodge & Roy, "BERMo: What can BERT learn from ELMo?", arXiv 2110.15802).

    BERMo is BERT whose task head reads a scalar mix of every depth instead of the last layer only:

        mixed = gamma * sum_j softmax(w)_j * h_j

    where ``h_0`` is the embedding output and ``h_1 .. h_L`` the encoder layers' outputs. All BERT settings are
    accepted unchanged, and a plain BERT ``config.json`` (``model_type: "bert"``) loads into this class.

    Args:
        include_embeddings (`bool`, *optional*, defaults to `True`):
            Whether the embedding output is depth 0 of the mix. The mix has `num_hidden_layers + 1` depths when
            `True`, `num_hidden_layers` when `False`.
        layer_mix_init (`str`, *optional*, defaults to `"uniform"`):
            Start of the mix weights: `"uniform"` (all zeros, an even mix, as ELMo and the paper) or `"last"` (the
            last depth starts with 90% of the mass, so a fresh model starts close to plain BERT).
        layer_mix_dropout (`float`, *optional*, defaults to 0.0):
            Layer dropout in [0, 1): during training each depth is left out of the softmax with this probability
            (as UDify's `ScalarMixWithDropout`); at least one depth is always kept.
        layer_mix_layer_norm (`bool`, *optional*, defaults to `False`):
            Whether each depth is normalized before mixing, as ELMo's `do_layer_norm`: mean and variance over the real
            (non-padding) tokens and all hidden units of each sequence.
        kwargs:
            The settings of [`~transformers.BertConfig`].

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
        """Number of depths in the mix: the encoder layers, plus the embedding output when it is included."""
        return self.num_hidden_layers + int(self.include_embeddings)

    @classmethod
    def from_bert_config(cls, bert_config: BertConfig, **mix_settings) -> "BermoConfig":
        """Builds a BERMo configuration from a BERT one: every BERT setting is kept, `mix_settings` are added."""
        config_dict = bert_config.to_dict()
        config_dict.pop("model_type", None)
        config_dict.pop("transformers_version", None)
        config_dict.update(mix_settings)
        return cls(**config_dict)

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        """Reads a configuration file; a BERT one is taken as a BERMo configuration with the default mix."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if config_dict.get("model_type") == "bert":
            config_dict = {**config_dict, "model_type": cls.model_type}
        return config_dict, kwargs


def _check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be a bool (True or False).")


BermoConfig.register_for_auto_class()
