"""Forward logits, loss and every gradient against PyTorch autograd on the exported weights.

Skipped when PyTorch is missing, unless CHARFORGE_REQUIRE_TORCH=1 (CI sets it), where a
missing PyTorch is a failure: these tests must run, not skip, in CI.
"""
import os

import numpy as np
import pytest

import charforge
from charforge.nn.interop import from_torch_state_dict, to_torch_state_dict

if os.environ.get("CHARFORGE_REQUIRE_TORCH") == "1":
    import torch  # noqa: F401  (fail loudly)
torch = pytest.importorskip("torch")
nn = torch.nn

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-4, atol=1e-5)}


def _torch_model(model):
    c = model.config
    dt = torch.float64 if c.dtype == "float64" else torch.float32
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[c.cell]
    in_size = c.embedding if c.embedding is not None else c.vocab_size
    mods = nn.ModuleDict({
        "rnn": cls(in_size, c.hidden, c.layers, batch_first=True),
        "out": nn.Linear(c.hidden, c.vocab_size)})
    if c.embedding is not None:
        mods["embedding"] = nn.Embedding(c.vocab_size, c.embedding)
    mods.to(dt)
    sd = {k: torch.from_numpy(v) for k, v in to_torch_state_dict(model).items()}
    mods.load_state_dict(sd, strict=True)
    return mods, dt


def _torch_loss(mods, model, x, y, mask, dt):
    c = model.config
    xt = torch.from_numpy(x)
    if c.embedding is not None:
        inp = mods["embedding"](xt)
    else:
        inp = nn.functional.one_hot(xt, c.vocab_size).to(dt)
    h, _ = mods["rnn"](inp)
    logits = mods["out"](h)
    nll = nn.functional.cross_entropy(logits.reshape(-1, c.vocab_size),
                                      torch.from_numpy(y).reshape(-1), reduction="none")
    m = torch.from_numpy(mask.astype(np.float64)).to(dt).reshape(-1)
    return (nll * m).sum() / m.sum(), logits


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("embedding", [16, None])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_logits_loss_and_grads_match_autograd(cell, embedding, dtype):
    rng = np.random.default_rng(7)
    model = charforge.CharModel(23, cell, 2, 32, embedding, dtype=dtype, seed=5)
    model.params["out.bias"][...] = rng.normal(0, 0.1, 23)   # non-zero biases everywhere
    for k, v in model.params.items():
        if "bias" in k:
            v[...] = rng.normal(0, 0.1, v.shape)
    x = rng.integers(0, 23, (4, 9))
    y = rng.integers(0, 23, (4, 9))
    mask = rng.random((4, 9)) > 0.25
    loss, grads, _ = model.loss_and_grads(x, y, mask)
    logits, _ = model.logits(x)

    mods, dt = _torch_model(model)
    t_loss, t_logits = _torch_loss(mods, model, x, y, mask, dt)
    t_loss.backward()
    tol = TOL[dtype]
    np.testing.assert_allclose(logits, t_logits.detach().numpy(), **tol)
    np.testing.assert_allclose(loss, t_loss.item(), **tol)
    t_grads = {k: p.grad.numpy() for k, p in mods.named_parameters()}
    for name, g in grads.items():
        if name.startswith("rnn.bias") and cell != "gru":
            layer = name.rsplit("_l", 1)[1]
            want = t_grads[f"rnn.bias_ih_l{layer}"]     # single bias: gradient of either
            np.testing.assert_allclose(t_grads[f"rnn.bias_hh_l{layer}"], want, **tol)
        else:
            want = t_grads[name]
        np.testing.assert_allclose(g, want, err_msg=name, **tol)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_import_from_torch_sums_the_two_biases(cell):
    torch.manual_seed(0)
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
    emb, rnn, out = nn.Embedding(13, 8), cls(8, 16, 2, batch_first=True), nn.Linear(16, 13)
    sd = {f"embedding.{k}": v for k, v in emb.state_dict().items()}
    sd.update({f"rnn.{k}": v for k, v in rnn.state_dict().items()})
    sd.update({f"out.{k}": v for k, v in out.state_dict().items()})
    model = from_torch_state_dict(sd, cell=cell)
    x = np.random.default_rng(0).integers(0, 13, (2, 6))
    with torch.no_grad():
        h, _ = rnn(emb(torch.from_numpy(x)))
        want = out(h).numpy()
    got, _ = model.logits(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_bf16_run_checkpoint_interoperates(tmp_path):
    """A run trained with precision bf16 keeps float32 weights: its checkpoint goes to a
    PyTorch state dict and back bit for bit, PyTorch's float32 logits match charforge's, and
    the model imported back runs at bf16 exactly as the one saved."""
    from conftest import shakespeare_head

    from charforge.checkpoints.pretrained import load
    from charforge.training.settings import TrainConfig
    from charforge.training.trainer import Trainer
    corpus = tmp_path / "c.txt"
    corpus.write_text(shakespeare_head(20000), encoding="utf-8")
    cfg = TrainConfig(corpus="textfile", corpus_options={"path": str(corpus)}, cell="lstm",
                      layers=2, hidden=32, embedding=8, batch=8, seq=24, max_steps=30,
                      epochs=10, precision="bf16", sample_length=0)
    Trainer(cfg, tmp_path / "run", progress=False).run()
    model, meta = load(tmp_path / "run")
    assert model.dtype == np.float32 and meta["train"]["config"]["precision"] == "bf16"
    sd = to_torch_state_dict(model)
    mods, dt = _torch_model(model)
    x = np.random.default_rng(0).integers(0, model.config.vocab_size, (3, 20))
    with torch.no_grad():
        h, _ = mods["rnn"](mods["embedding"](torch.from_numpy(x)))
        want = mods["out"](h).numpy()
    got, _ = model.logits(x)
    np.testing.assert_allclose(got, want, **TOL["float32"])
    back = from_torch_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, cell="lstm")
    assert np.array_equal(back.flat, model.flat)
    model.precision = back.precision = "bf16"
    assert np.array_equal(back.logits(x)[0], model.logits(x)[0])
