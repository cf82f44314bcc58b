"""Checkpoint files: round trip, atomic writes, and one-line errors for bad files."""
import json
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

import charforge
from charforge.checkpoints import store as ckpt
from charforge.cli.main import main
from charforge.core.errors import CharforgeError


def small_model(**kw):
    vocab = charforge.Vocabulary("abcdef\n", eos=True, pad=True)
    return charforge.CharModel(vocab, kw.pop("cell", "gru"), 2, 12, 5, seed=3, **kw)


def test_round_trip_carries_everything_needed(tmp_path):
    m = small_model()
    path = ckpt.save_model(tmp_path / "m.safetensors", m, {"val_loss": 1.23})
    loaded, meta = ckpt.load_model(path)
    assert loaded.vocab == m.vocab and loaded.config == m.config
    assert np.array_equal(loaded.flat, m.flat)
    assert meta["val_loss"] == 1.23 and meta["format_version"] == ckpt.FORMAT_VERSION
    assert charforge.generate(loaded, "ab", 20, seed=1) == charforge.generate(m, "ab", 20, seed=1)


def test_float16_storage_widens_on_load(tmp_path):
    m = small_model(cell="lstm")
    path = ckpt.save_model(tmp_path / "m.safetensors", m, weight_dtype="float16")
    loaded, _ = ckpt.load_model(path)
    assert loaded.flat.dtype == np.float32
    assert np.allclose(loaded.flat, m.flat, atol=1e-3)
    assert all(v.dtype == np.float16 for v in ckpt.load(path).params.values())


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    m = small_model()
    path = ckpt.save_model(tmp_path / "m.safetensors", m)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    m.flat += 1.0
    with pytest.raises(CharforgeError, match="cannot write .*m.safetensors: disk full"):
        ckpt.save_model(path, m)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "newer", "bad_json",
                                    "wrong_shape", "empty"])
def test_bad_files_are_one_line_errors(tmp_path, damage, capsys):
    m = small_model()
    path = tmp_path / "m.safetensors"
    ckpt.save_model(path, m)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[:len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(5000))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign":
        save_file({"weight": np.zeros((3, 3), np.float32)}, str(path))
    else:
        c = ckpt.load(path)
        if damage == "newer":
            c.meta["format_version"] = ckpt.FORMAT_VERSION + 1
            ckpt.save(path, c)
        elif damage == "wrong_shape":
            c.params["out.bias"] = np.zeros(3, np.float32)
            ckpt.save(path, c)
        else:
            from safetensors.numpy import save
            tensors = {f"param/{k}": v for k, v in c.params.items()}
            path.write_bytes(save(tensors, metadata={"charforge": "{not json"}))
    with pytest.raises(CharforgeError) as err:
        ckpt.load_model(path)
    assert "\n" not in str(err.value)
    assert main(["generate", str(path), "--length", "5"]) == 2
    out = capsys.readouterr()
    assert out.err.startswith("charforge: error:") and out.err.count("\n") == 1
    if damage == "newer":
        assert "upgrade charforge" in str(err.value)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(CharforgeError, match="does not exist"):
        ckpt.load(tmp_path / "nope.safetensors")
    with pytest.raises(CharforgeError, match="holds no charforge checkpoint"):
        ckpt.load(tmp_path)


def test_loading_never_unpickles(tmp_path):
    """A file whose header smuggles a pickle is just bytes to the loader."""
    import pickle
    payload = pickle.dumps(os.system)
    path = tmp_path / "evil.safetensors"
    path.write_bytes(len(payload).to_bytes(8, "little") + payload)
    with pytest.raises(CharforgeError):
        ckpt.load(path)


def test_metadata_is_plain_json_in_the_header(tmp_path):
    m = small_model()
    path = ckpt.save_model(tmp_path / "m.safetensors", m)
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header["__metadata__"]["charforge"])
    assert meta["vocab"]["tokens"][:3] == ["[PAD]", "<eos>", "\n"]
    assert meta["model"]["cell"] == "gru"
