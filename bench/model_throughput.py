#!/usr/bin/python3
"""The eager PyTorch reference of bench/model_throughput.cpp: the same model directory, the same
sequence, forward (logits) and forward + backward of the mean next-token NLL, best of N.
Uses tests/reference/llama_reference.py's Model (transformers' eager semantics).

usage: model_throughput.py MODEL_DIR [SEQ] [BATCH] [ITERATIONS] [THREADS]
Prints one JSON object."""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from llama_reference import Model  # noqa: E402


def main():
    model_dir = sys.argv[1]
    seq = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    iterations = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    if len(sys.argv) > 5:
        torch.set_num_threads(int(sys.argv[5]))
    model = Model(model_dir)
    vocab = model.cfg["vocab_size"]
    torch.manual_seed(0)
    ids = torch.randint(3, vocab, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.int64)
    tokens = batch * seq
    forward = 1e30
    with torch.no_grad():
        model.forward(ids, mask)
        for _ in range(iterations):
            start = time.perf_counter()
            model.forward(ids, mask)
            forward = min(forward, time.perf_counter() - start)
    for t in model.w.values():
        t.requires_grad_(True)
    step = 1e30
    for i in range(iterations + 1):
        for t in model.w.values():
            t.grad = None
        start = time.perf_counter()
        logits = model.forward(ids, mask).float()
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        if i > 0:
            step = min(step, time.perf_counter() - start)
    print(json.dumps({"forward_tokens_per_s": tokens / forward, "train_tokens_per_s": tokens / step,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
