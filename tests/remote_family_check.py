"""Loads saved BERMo folders through their own code files only (`trust_remote_code=True`, `bermo_hf` not importable)
and prints what each gives; `test_remote_code_families.py` runs it in a fresh process.

    python remote_family_check.py CASES_JSON
        CASES_JSON: a file holding a list of `{"folder", "auto_class", "inputs", "pipeline_texts"}`. For each case,
        loads the folder (eager attention, as the reference) and prints the module of the loaded class, its first
        output field, its `hidden_states`, and (where `pipeline_texts` is given) the labels of
        `pipeline("text-classification")` on them.

Prints one line `RESULT {json}`.
"""

import json
import sys

sys.modules["bermo_hf"] = None  # only the folders' own code may run


def run(case: dict) -> dict:
    import torch
    import transformers

    auto_class = getattr(transformers, case["auto_class"])
    model = auto_class.from_pretrained(case["folder"], trust_remote_code=True, attn_implementation="eager").eval()
    inputs = {name: torch.tensor(value) for name, value in case["inputs"].items()}
    with torch.no_grad():
        outputs = model(**inputs, output_hidden_states=True)
    first = next(value for value in outputs.values() if isinstance(value, torch.Tensor))
    result = {
        "module": type(model).__module__,
        "class": type(model).__name__,
        "first": first.tolist(),
        "hidden_states": [state.tolist() for state in outputs.hidden_states],
    }
    if case.get("pipeline_texts"):
        classifier = transformers.pipeline("text-classification", model=case["folder"], trust_remote_code=True)
        result["labels"] = [prediction["label"] for prediction in classifier(case["pipeline_texts"])]
    return result


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        cases = json.load(handle)
    print("RESULT", json.dumps([run(case) for case in cases]))
