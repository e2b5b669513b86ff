"""SentEval probing of BERT and BERMo (Conneau et al. 2018): which linguistic properties each one captures.

SentEval's ten probing tasks (sentence length, word content, tree depth, top constituents, bigram shift, tense,
subject and object number, semantic odd man out, coordination inversion) each classify a sentence by one property.
Here each task is run on BERT and on BERMo made from the same checkpoint, in one of two settings (`run_probing`, and
`bermo probe`):

- ``finetune`` (the paper's): BERT and BERMo are fine-tuned on each task's ``tr`` split with identical
  hyper-parameters and seeds, the epoch is selected on ``va`` and ``te`` accuracy is reported.
- ``frozen`` (the layer-wise picture of Tenney et al. 2019): every depth's sentence vector (first token, or mean over
  real tokens) is extracted once per checkpoint and task and cached; a scikit-learn logistic regression is trained per
  depth. BERT's figure is the last depth's probe; BERMo's is a linear probe on a learned scalar mix of every depth
  (the checkpoint stays frozen, only the mix and the linear layer are learned).

Each SentEval file holds one ``split<TAB>label<TAB>sentence`` line per example, ``split`` being ``tr``, ``va`` or
``te``. Results are grouped as surface, syntactic and semantic tasks, with group averages; accuracies are percentages.

The modules, each importing only the ones above it (`report` reads results and the task table only):

- `data`: the task table (`SentEvalTask`, `SENTEVAL_TASKS`, `senteval_task`) and reading the files, checked
  (`read_senteval_file`, `load_task`, `load_senteval`, `TaskData`).
- `features`: every depth's sentence vectors of a frozen checkpoint (`extract_depth_features`) and their cache
  (`checkpoint_fingerprint`, `file_fingerprint`, `cached_depth_features`).
- `probes`: the classifiers on those features (`fit_depth_probe`, `fit_mix_probe`, `ProbeResult`).
- `report`: the report (`summarize`) and its outputs (`format_markdown`, `plot_heatmap`, `write_outputs`).
- `resume`: what a report was made from and the run it records, for `--resume` (`run_inputs`, `recorded_run`,
  `RecordedRun`, `SETTINGS_NOT_IN_RESULTS`).
- `runs`: the comparisons (`ProbingArguments`, `probe_frozen_task`, `run_frozen`, `finetune_task`, `run_finetune`)
  and the entry point `run_probing` (`ProbingInterrupted`).

Everything listed is importable from `bermo_hf.probing` itself, as is `ProbingError` (from `bermo_hf.errors`).
"""

from ..errors import ProbingError
from .data import (
    GROUPS,
    SENTEVAL_TASKS,
    SPLITS,
    SentEvalTask,
    TaskData,
    load_senteval,
    load_task,
    read_senteval_file,
    senteval_task,
)
from .features import cached_depth_features, checkpoint_fingerprint, extract_depth_features, file_fingerprint
from .probes import ProbeResult, fit_depth_probe, fit_mix_probe
from .report import HEATMAP_PNG, RESULTS_JSON, RESULTS_MARKDOWN, format_markdown, plot_heatmap, summarize, write_outputs
from .resume import SETTINGS_NOT_IN_RESULTS, RecordedRun, recorded_run, run_inputs
from .runs import (
    ProbingArguments,
    ProbingInterrupted,
    finetune_task,
    probe_frozen_task,
    run_finetune,
    run_frozen,
    run_probing,
)

__all__ = [
    "GROUPS",
    "HEATMAP_PNG",
    "RESULTS_JSON",
    "RESULTS_MARKDOWN",
    "SENTEVAL_TASKS",
    "SETTINGS_NOT_IN_RESULTS",
    "SPLITS",
    "ProbeResult",
    "ProbingArguments",
    "ProbingInterrupted",
    "RecordedRun",
    "ProbingError",
    "SentEvalTask",
    "TaskData",
    "cached_depth_features",
    "checkpoint_fingerprint",
    "extract_depth_features",
    "file_fingerprint",
    "finetune_task",
    "fit_depth_probe",
    "fit_mix_probe",
    "format_markdown",
    "load_senteval",
    "load_task",
    "plot_heatmap",
    "probe_frozen_task",
    "read_senteval_file",
    "recorded_run",
    "run_finetune",
    "run_frozen",
    "run_inputs",
    "run_probing",
    "senteval_task",
    "summarize",
    "write_outputs",
]
