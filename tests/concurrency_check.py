"""One model shared by many threads: every call must return exactly what the same call returns alone.

Imports only torch, so that it also runs in a fresh process where `bermo_hf` cannot be imported (the remote-code
test runs this file as a script there)."""

import sys
import threading

import torch


def batches(count: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Padded batches of different sizes and lengths (vocab 100)."""
    generator = torch.Generator().manual_seed(seed)
    result = []
    for index in range(count):
        size, length = 1 + index % 4, 5 + (3 * index) % 11
        input_ids = torch.randint(1, 100, (size, length), generator=generator)
        attention_mask = torch.ones_like(input_ids)
        attention_mask[0, length - 1 - index % 3 :] = 0
        result.append({"input_ids": input_ids, "attention_mask": attention_mask})
    return result


def largest_difference_from_serial(model, grad_mode, threads: int = 8, calls: int = 50) -> float:
    """Runs `threads` threads of `calls` calls each on `model` under `grad_mode` (`torch.no_grad` or
    `torch.inference_mode`) and returns the largest absolute difference from the serial results; a call that raised
    counts as infinity."""
    inputs = batches(threads)
    with grad_mode():
        expected = [model(**batch).logits for batch in inputs]
    differences = [0.0] * threads
    start = threading.Barrier(threads)

    def work(index: int) -> None:
        start.wait()
        try:
            with grad_mode():
                for _ in range(calls):
                    logits = model(**inputs[index]).logits
                    difference = (logits - expected[index]).abs().max().item()
                    differences[index] = max(differences[index], difference)
        except Exception:
            differences[index] = float("inf")
            raise

    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to give races every chance
    try:
        workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(switch_interval)
    return max(differences)


if __name__ == "__main__":
    import json

    sys.modules["bermo_hf"] = None  # only the folder's own code may run
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    result = {
        "module": type(model).__module__,
        "no_grad": largest_difference_from_serial(model, torch.no_grad),
        "inference_mode": largest_difference_from_serial(model, torch.inference_mode),
    }
    print("RESULT", json.dumps(result))
