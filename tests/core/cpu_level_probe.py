"""Run by test_cpu_levels.py in a fresh process per CHARFORGE_CPU level: prints, as JSON, what
the kernels compute at that level (losses and gradients against the float64 reference,
generated texts, a short training run), for the test to compare across levels."""
import json
import sys
import tempfile

import numpy as np

import charforge
from charforge._kernels import ops
from charforge.generation.engine import generate
from charforge.nn.reference import model_loss_and_grads
from charforge.training.settings import TrainConfig
from charforge.training.trainer import Trainer

CHARS = "abcdefghijklmnopqrstuvwxyz .,\n"


def cell_report(cell: str) -> dict:
    rng = np.random.default_rng(3)
    model = charforge.CharModel(charforge.Vocabulary(CHARS), cell, 2, 48, 12, dtype="float32",
                                seed=1)
    # Weights small enough that the recurrence contracts: a chaotic random network would
    # amplify the last-bit differences between levels (summation order, FMA) into different
    # texts, which trained models do not.
    model.flat += rng.normal(0, 0.15, model.flat.shape).astype(np.float32)
    B, T, V = 5, 30, len(model.vocab)
    x, y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    mask = rng.random((B, T)) > 0.2
    loss, grads, _ = model.loss_and_grads(x, y, mask, None)
    p64 = {k: v.astype(np.float64) for k, v in model.params.items()}
    ref_loss, ref_grads, _, _ = model_loss_and_grads(p64, cell, 2, x, y, mask, None)
    grad_err = max(float(np.abs(grads[k] - ref_grads[k]).max() / (np.abs(ref_grads[k]).max()
                                                                   + 1e-12)) for k in ref_grads)
    texts = generate(model, ["ab", "c", "", "the quick"], 150, "top_p", seed=5, p=0.95)
    texts.append(generate(model, "the", 300, seed=9, temperature=0.8))
    greedy = generate(model, "x", 100, "argmax", result=True, return_probs=True)
    texts += greedy.texts
    return {"loss": float(loss), "ref_loss": float(ref_loss), "grad_err": grad_err,
            "texts": texts, "probs": greedy.probs[0].tolist()}


def training_report(corpus: str) -> dict:
    cfg = TrainConfig(cell="lstm", layers=2, hidden=48, embedding=8, batch=8, seq=32, lr=3e-3,
                      max_steps=8, eval_every=4, log_every=4, sample_length=0, seed=7,
                      corpus="textfile", corpus_options={"path": corpus})
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out)
        result = trainer.run()
        return {"best_val": float(result.best_val),
                "params": trainer.model.flat[:: max(1, trainer.model.flat.size // 500)].tolist()}


if __name__ == "__main__":
    report = {"level": ops.cpu_level(), "packed_gemm": bool(ops.packed_gemm_available()),
              "cells": {cell: cell_report(cell) for cell in ("rnn", "gru", "lstm")},
              "training": training_report(sys.argv[1])}
    print(json.dumps(report))
