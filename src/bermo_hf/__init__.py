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
from .modeling_bermo import (
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

__all__ = [
    "BermoConfig",
    "BermoForMultipleChoice",
    "BermoForQuestionAnswering",
    "BermoForSequenceClassification",
    "BermoForTokenClassification",
    "BermoLayerMix",
    "BermoModel",
    "BermoPreTrainedModel",
]
