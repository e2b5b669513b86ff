"""The classes of a task: `LabelSpace` (found in the train split) and the names a fine-tuned model gives them."""

import dataclasses
import logging

from ..errors import BermoUsageError

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class LabelSpace:
    """The labels of a task, as found in the train split: `labels[i]` is the name of class id `i`.

    A float label column makes a regression task (`num_labels == 1`)."""

    labels: list[str]
    is_regression: bool
    # raw value in the data -> class id
    value_to_id: dict

    @classmethod
    def from_datasets(cls, raw: "datasets.DatasetDict", label_column: str) -> "LabelSpace":  # noqa: F821
        """Builds the label list from `raw["train"]` and checks that `raw["validation"]` (if any) has no other label.

        Raises `BermoUsageError` when it has."""
        import datasets

        feature = raw["train"].features[label_column]
        if isinstance(feature, datasets.ClassLabel):
            space = cls(list(feature.names), False, {i: i for i in range(feature.num_classes)})
        elif isinstance(feature, datasets.Value) and feature.dtype.startswith("float"):
            space = cls(["score"], True, {})
        else:
            values = sorted(set(raw["train"][label_column]), key=lambda value: (str(type(value)), value))
            space = cls([str(value) for value in values], False, {value: i for i, value in enumerate(values)})
        if "validation" in raw and not space.is_regression:
            unknown = sorted({str(v) for v in raw["validation"][label_column] if v not in space.value_to_id})
            if unknown:
                raise BermoUsageError(
                    f"the validation data has labels absent from the train data: {', '.join(unknown[:10])}"
                    f"{' ...' if len(unknown) > 10 else ''} (train labels: {', '.join(space.labels)})."
                )
        return space

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)

    @property
    def id2label(self) -> dict[int, str]:
        return {i: label for i, label in enumerate(self.labels)}

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def is_numbered(self) -> bool:
        """Whether the data's labels are the integers 0 .. n-1 (class names then have to come from elsewhere)."""
        return not self.is_regression and self.labels == [str(i) for i in range(len(self.labels))]

    def renamed(self, names: list[str]) -> "LabelSpace":
        """The same classes under `names`: for numbered labels, `names[i]` names label `i`; otherwise `names` must
        be the data's labels, in the order of the class ids they are to get."""
        if self.is_numbered:
            return LabelSpace(list(names), False, dict(self.value_to_id))
        new_ids = {name: index for index, name in enumerate(names)}
        value_to_id = {value: new_ids[self.labels[class_id]] for value, class_id in self.value_to_id.items()}
        return LabelSpace(list(names), False, value_to_id)

    def encode(self, values: list) -> list:
        """Raw label values -> model targets (class ids, or floats for regression)."""
        if self.is_regression:
            return [float(value) for value in values]
        return [self.value_to_id[value] for value in values]


def name_classes(label_space: LabelSpace, checkpoint_config, label_names: str | None = None) -> LabelSpace:
    """The class names a fine-tuned model gets, as transformers' `run_glue.py` chooses them:

    - `label_names` (`--label_names a,b,...`, `DataArguments.class_names`) when given: names of the labels
      0 .. n-1 when the data numbers its classes, or else the data's own labels in the order of their class ids;
    - otherwise the checkpoint's names (`id2label` of `checkpoint_config`, unless transformers' default `LABEL_i`)
      when they fit: the same number of classes for numbered data labels, the same set of names (kept with the
      checkpoint's class ids) for named ones; a checkpoint whose names do not fit is reported in one warning line and
      the data's labels are used;
    - otherwise the data's labels.

    Raises `BermoUsageError` when `label_names` does not fit the data."""
    if label_names is not None:
        names = [name.strip() for name in label_names.split(",")]
        if label_space.is_regression:
            raise BermoUsageError("--label_names does not apply to a regression (float labels).")
        if len(names) != label_space.num_labels or len(set(names)) != len(names) or "" in names:
            raise BermoUsageError(
                f"--label_names {label_names!r} must name each of the train data's {label_space.num_labels} classes "
                f"({', '.join(label_space.labels)}) once, comma-separated."
            )
        if not label_space.is_numbered and set(names) != set(label_space.labels):
            raise BermoUsageError(
                f"--label_names {label_names!r} does not match the train data's labels ({', '.join(label_space.labels)}"
                "): name the labels 0, 1, ... of numbered data, or list the data's own labels in the order of their "
                "class ids."
            )
        return label_space.renamed(names)
    id2label = getattr(checkpoint_config, "id2label", None) or {}
    names = [id2label.get(i, id2label.get(str(i))) for i in range(len(id2label))]
    if label_space.is_regression or not names or names == [f"LABEL_{i}" for i in range(len(names))]:
        return label_space
    if label_space.is_numbered and len(names) == label_space.num_labels:
        return label_space.renamed(names)
    if not label_space.is_numbered and set(names) == set(label_space.labels):
        return label_space.renamed(names)
    logger.warning(
        f"the checkpoint was trained with the classes {', '.join(map(str, names))}, but the train data's labels are "
        f"{', '.join(label_space.labels)}: ignoring the checkpoint's class names (give --label_names to name them)."
    )
    return label_space
