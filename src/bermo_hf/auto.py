"""One entry point per task for any supported checkpoint: `AutoBermoModelForSequenceClassification.from_pretrained`
takes a checkpoint of any supported family (a plain one, or a BERMo one) and returns that family's BERMo model.

Named after transformers' `AutoModelFor...` and PEFT's `AutoPeftModelFor...`:

```python
>>> from bermo_hf import AutoBermoModelForSequenceClassification
>>> model = AutoBermoModelForSequenceClassification.from_pretrained("FacebookAI/roberta-base", num_labels=2)
>>> type(model).__name__
'BermoRobertaForSequenceClassification'
```
"""

from transformers import PretrainedConfig

from .modeling_bermo import _HUB_KWARGS, BermoFamily, family_of


def checkpoint_family(pretrained_model_name_or_path, **hub_kwargs) -> BermoFamily:
    """The BERMo family of a checkpoint (folder or Hub id), read from its `config.json`; `ValueError` naming the
    supported families when its model type has none."""
    config_dict, _ = PretrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
    model_type = config_dict.get("model_type")
    if model_type is None:
        raise ValueError(f"{pretrained_model_name_or_path}: its config.json names no model_type.")
    return family_of(model_type)


class _AutoBermoModel:
    """Builds the BERMo model of a checkpoint's (or a configuration's) family for the task `task`."""

    task = "feature-extraction"

    def __init__(self, *args, **kwargs):
        raise OSError(f"{type(self).__name__} is built with from_pretrained(...) or from_config(...).")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """The family's BERMo class for this task, `.from_pretrained(pretrained_model_name_or_path, ...)`: every
        weight of a plain checkpoint is reused and the mix starts as configured (mix settings such as
        `layer_mix_init="last"` are accepted as keyword arguments); a BERMo checkpoint loads whole."""
        hub_kwargs = {name: kwargs[name] for name in _HUB_KWARGS if name in kwargs}
        config = kwargs.get("config")
        if isinstance(config, PretrainedConfig):
            family = family_of(config.model_type)
        else:
            family = checkpoint_family(pretrained_model_name_or_path, **hub_kwargs)
        return family.model_class(cls.task).from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    @classmethod
    def from_config(cls, config: PretrainedConfig, **mix_settings):
        """A freshly initialized BERMo model for `config`, a BERMo configuration or a plain one of a supported
        family (converted, with `mix_settings`)."""
        family = family_of(config.model_type)
        if not isinstance(config, family.config_class):
            config = family.config_class.from_family_config(config, **mix_settings)
        elif mix_settings:
            raise ValueError("mix settings are taken with a plain configuration only; this one is already BERMo's.")
        return family.model_class(cls.task)(config)


class AutoBermoModel(_AutoBermoModel):
    """The BERMo base model of any supported checkpoint (`BermoModel` for BERT, `BermoRobertaModel`, ...)."""


class AutoBermoModelForSequenceClassification(_AutoBermoModel):
    """The BERMo sequence classification model of any supported checkpoint."""

    task = "sequence-classification"


class AutoBermoModelForTokenClassification(_AutoBermoModel):
    """The BERMo token classification model of any supported checkpoint."""

    task = "token-classification"


class AutoBermoModelForQuestionAnswering(_AutoBermoModel):
    """The BERMo question answering model of any supported checkpoint."""

    task = "question-answering"


class AutoBermoModelForMultipleChoice(_AutoBermoModel):
    """The BERMo multiple-choice model of any supported checkpoint (families that have such a head)."""

    task = "multiple-choice"
