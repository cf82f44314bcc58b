"""Model construction, summary, bad input, vocabulary basics, interop round trip."""
import numpy as np
import pytest

import charforge
from charforge.cli.main import main
from charforge.core.errors import CharforgeError, ShapeError
from charforge.nn.interop import from_torch_state_dict, to_torch_state_dict


def test_params_are_views_of_one_flat_buffer():
    model = charforge.CharModel(30, "lstm", 2, 16, 8)
    model.flat[...] = 0
    model.params["out.bias"][...] = 3
    assert model.flat[-30:].sum() == 90
    assert sum(v.size for v in model.params.values()) == model.flat.size


@pytest.mark.parametrize("cell,layers,hidden,emb,vocab,counts", [
    # the Keras text-generation tutorial's GRU model (vocabulary 66 with [UNK])
    ("gru", 1, 1024, 256, 66, [16896, 3938304, 67650]),
    ("lstm", 1, 128, None, 65, [0, 4 * (128 * (65 + 128) + 128), 128 * 65 + 65]),
    ("rnn", 1, 1024, 256, 65, [16640, 1024 * (256 + 1024) + 1024, 66625]),
])
def test_summary_matches_keras_parameter_counts(cell, layers, hidden, emb, vocab, counts):
    summary = charforge.CharModel(vocab, cell, layers, hidden, emb).summary()
    assert [row[2] for row in summary.rows] == counts
    assert summary.total == sum(counts)
    assert f"Total params: {sum(counts):,}" in str(summary)


def test_cli_summary(capsys):
    assert main(["summary", "--cell", "lstm", "--layers", "2", "--hidden", "512",
                 "--embedding", "none", "--vocab", "65"]) == 0
    out = capsys.readouterr().out
    assert "lstm_1 (LSTM)" in out and "one_hot" in out


def test_cli_user_errors_are_one_line_exit_2(capsys):
    assert main(["summary", "--cell", "transformer"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("charforge: error: unknown cell type") and "\n" not in err


@pytest.mark.parametrize("kwargs,match", [
    (dict(layers=0), "layers"), (dict(hidden=-3), "hidden"), (dict(dropout=1.0), "dropout"),
    (dict(dtype="float16"), "dtype"), (dict(embedding=0), "embedding"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(CharforgeError, match=match):
        charforge.CharModel(10, **kwargs)


def test_bad_inputs_give_clear_errors(rng):
    model = charforge.CharModel(10, "gru", 1, 8, 4)
    x = rng.integers(0, 10, (2, 5))
    with pytest.raises(ShapeError, match="integer"):
        model.loss_and_grads(x.astype(float), x)
    with pytest.raises(ShapeError, match="outside"):
        model.loss_and_grads(x + 10, x)
    with pytest.raises(ShapeError, match="outside"):
        model.loss_and_grads(x - 11, x)
    with pytest.raises(ShapeError, match="empty"):
        model.loss_and_grads(np.zeros((2, 0), int), np.zeros((2, 0), int))
    with pytest.raises(ShapeError, match="batch, time"):
        model.loss_and_grads(x[0], x[0])
    with pytest.raises(ShapeError, match="same shape"):
        model.loss_and_grads(x, x[:, :4])
    with pytest.raises(ShapeError, match="mask"):
        model.loss_and_grads(x, x, mask=np.ones((5, 2)))
    with pytest.raises(ShapeError, match="non-negative|finite"):
        model.loss_and_grads(x, x, mask=np.full((2, 5), np.nan))
    bad_state = [(np.full((2, 8), np.inf),)]
    with pytest.raises(ShapeError, match="non-finite"):
        model.loss_and_grads(x, x, state=bad_state)
    with pytest.raises(ShapeError, match="shape"):
        model.loss_and_grads(x, x, state=[(np.zeros((3, 8)),)])
    with pytest.raises(ShapeError, match="one entry per layer"):
        model.loss_and_grads(x, x, state=[])


def test_float64_copy_and_interop_round_trip(rng):
    model = charforge.CharModel(12, "lstm", 2, 8, 5, seed=4)
    m64 = model.astype("float64")
    assert m64.dtype == np.float64
    np.testing.assert_allclose(m64.flat, model.flat)
    back = from_torch_state_dict(to_torch_state_dict(model), cell="lstm")
    np.testing.assert_array_equal(back.flat, model.flat)


def test_vocabulary_round_trip_and_unseen_characters():
    v = charforge.Vocabulary.from_text("hello, wörld")
    assert v.decode(v.encode("wörld")) == "wörld"
    with pytest.raises(CharforgeError, match="'z'"):
        v.encode("zoo")
    w = charforge.Vocabulary.from_text("abc", unk=True, unknown="map")
    assert w.decode(w.encode("abz")) == "ab"
    assert charforge.Vocabulary.from_json(w.to_json()) == w


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_uniform_init_scheme_follows_pytorch(cell):
    """init="uniform": every weight and bias in +-1/sqrt(hidden) (a merged single bias
    is the sum of PyTorch's two, so within twice that), embedding N(0, 1); "keras" differs."""
    model = charforge.CharModel(30, cell, 2, 64, 8, seed=5, init="uniform")
    limit = 1 / 8
    merged = len(model.cell.bias_names) == 1
    for name, p in model.params.items():
        if name == "embedding.weight":
            assert abs(float(p.std()) - 1.0) < 0.2
            continue
        bound = 2 * limit if merged and name.startswith("rnn.") and "bias" in name else limit
        assert np.abs(p).max() <= bound + 1e-7, name
        assert np.abs(p).max() > 0.5 * bound, name           # really drawn, not zero
    keras = charforge.CharModel(30, cell, 2, 64, 8, seed=5)
    assert not np.allclose(keras.flat, model.flat)
    with pytest.raises(charforge.CharforgeError, match="init must be one of"):
        charforge.CharModel(30, cell, 1, 8, 4, init="xavier")


def test_train_config_takes_the_init_scheme():
    from charforge.training.settings import TrainConfig
    assert TrainConfig(init="uniform").validate().init == "uniform"
    with pytest.raises(charforge.CharforgeError, match="init must be one of keras, uniform"):
        TrainConfig(init="xavier").validate()
