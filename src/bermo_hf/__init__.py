"""BERMo for Hugging Face transformers: BERT whose task heads read a learned scalar mix of every layer.

Importing this package registers the `bermo` model type with the transformers Auto classes.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .configuration_bermo import BermoConfig
from .hub import LayerWeights, set_model_card_info, write_model_card
from .modeling_bermo import (
    MODEL_CARD_WRITERS,
    BermoForMultipleChoice,
    BermoForQuestionAnswering,
    BermoForSequenceClassification,
    BermoForTokenClassification,
    BermoLayerMix,
    BermoModel,
    BermoPreTrainedModel,
)

__version__ = "0.1.0"

AutoConfig.register(BermoConfig.model_type, BermoConfig)
for _auto_class, _bermo_class in (
    (AutoModel, BermoModel),
    (AutoModelForSequenceClassification, BermoForSequenceClassification),
    (AutoModelForMultipleChoice, BermoForMultipleChoice),
    (AutoModelForTokenClassification, BermoForTokenClassification),
    (AutoModelForQuestionAnswering, BermoForQuestionAnswering),
):
    _auto_class.register(BermoConfig, _bermo_class)
MODEL_CARD_WRITERS.append(write_model_card)

__all__ = [
    "BermoConfig",
    "BermoForMultipleChoice",
    "BermoForQuestionAnswering",
    "BermoForSequenceClassification",
    "BermoForTokenClassification",
    "BermoLayerMix",
    "BermoModel",
    "BermoPreTrainedModel",
    "LayerWeights",
    "set_model_card_info",
    "write_model_card",
]
