"""Bad input is one clear line: malformed checkpoints (mutations of a real file's header and
tensors, and arbitrary bytes), extreme sampler settings, thread counts, a closed stdout."""
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charforge.checkpoints import store as ckpt
from charforge.cli.main import main
from charforge.core.errors import CharforgeError, CheckpointError
from charforge.data.vocab import Vocabulary
from charforge.nn.model import CharModel


def _tensor_bytes(arr: np.ndarray) -> tuple[str, bytes]:
    kinds = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<f8"): "F64",
             np.dtype("<i4"): "I32", np.dtype("<i8"): "I64", np.dtype("bool"): "BOOL",
             np.dtype("u1"): "U8"}
    return kinds[arr.dtype], np.ascontiguousarray(arr).tobytes()


def write_safetensors(path, tensors: dict, meta, raw: dict | None = None) -> None:
    """A safetensors file written by hand, so any header and any dtype can be tried.
    raw: name -> (dtype tag, shape, bytes) for types numpy lacks (BF16, F8)."""
    header, blobs, offset = {}, [], 0
    items = [(k, *_tensor_bytes(v), v.shape) for k, v in tensors.items()]
    items += [(k, tag, data, shape) for k, (tag, shape, data) in (raw or {}).items()]
    for name, tag, data, shape in items:
        header[name] = {"dtype": tag, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if meta is not None:
        header["__metadata__"] = {"charforge": meta if isinstance(meta, str)
                                  else json.dumps(meta)}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


FIXTURES_OK = [HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def real():
    """(metadata, tensors) of a real checkpoint of a small model."""
    model = CharModel(Vocabulary("abcdefgh \n"), "gru", 1, 6, 4, seed=1)
    meta = ckpt.model_meta(model)
    tensors = {f"param/{k}": np.array(v) for k, v in model.params.items()}
    return meta, tensors


def _set(meta, dotted, value):
    out = json.loads(json.dumps(meta))
    *path, last = dotted.split(".")
    node = out
    for p in path:
        node = node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return out


META_MUTATIONS = [
    ("the metadata", []), ("the metadata", "text"), ("the metadata", None),
    ("the metadata", 3), ("vocab", None), ("vocab", "abc"), ("vocab", []),
    ("model", KeyError), ("model", None), ("model", [1, 2]), ("format", KeyError),
    ("format", "other"), ("format_version", True), ("format_version", 0),
    ("format_version", -1), ("format_version", "1"), ("format_version", 1.5),
    ("format_version", 99), ("model.dropout", "x"), ("model.dropout", 1.0),
    ("model.dropout", -0.5), ("model.hidden", 40000), ("model.hidden", 0),
    ("model.hidden", "6"), ("model.hidden", 6.0), ("model.hidden", True),
    ("model.layers", 1_000_000), ("model.layers", 2), ("model.layers", None),
    ("model.embedding", 5), ("model.embedding", "none"), ("model.embedding", -4),
    ("model.cell", "lstm"), ("model.cell", "nope"), ("model.cell", 3),
    ("model.vocab_size", 11), ("model.vocab_size", 10 ** 9), ("model.dtype", "int8"),
    ("vocab.tokens", None), ("vocab.tokens", "abc"), ("vocab.tokens", [1, 2, 3]),
    ("vocab.tokens", ["\ud800"] * 10), ("vocab.tokens", [""] * 10),
    ("vocab.specials", "x"), ("model.cell", KeyError), ("model.hidden", KeyError),
    ("train", []), ("train", {"config": {}}),
    ("train", {"config": {}, "optimizer": {}, "position": {"step": "3"}}),
    ("train", {"config": {}, "optimizer": {}, "position": {"step": -1, "epoch": 0,
                                                           "batch_index": 0}}),
]


def _mutated(meta, where, value):
    if where == "the metadata":
        return value
    return _set(meta, where, value)


@pytest.mark.parametrize("where,value", META_MUTATIONS)
def test_malformed_metadata_is_a_checkpoint_error(where, value, real, tmp_path, capsys):
    meta, tensors = real
    path = tmp_path / "bad.safetensors"
    write_safetensors(path, tensors, _mutated(meta, where, value))
    with pytest.raises(CheckpointError):
        ckpt.load(path).model()
    assert main(["generate", str(path), "--length", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and str(path) in err


def _vocab_size(meta):
    return meta["model"]["vocab_size"]


TENSOR_MUTATIONS = {
    "nan weight": lambda t: {**t, "param/out.bias": np.full_like(t["param/out.bias"], np.nan)},
    "inf weight": lambda t: {**t, "param/out.weight": t["param/out.weight"] * np.inf},
    "int weights": lambda t: {**t, "param/out.bias": t["param/out.bias"].astype(np.int32)},
    "bool weights": lambda t: {**t, "param/out.bias": t["param/out.bias"] > 0},
    "wrong shape": lambda t: {**t, "param/out.bias": np.zeros(3, np.float32)},
    "missing tensor": lambda t: {k: v for k, v in t.items() if k != "param/out.bias"},
    "extra tensor": lambda t: {**t, "param/extra": np.zeros(2, np.float32)},
    "foreign role": lambda t: {**t, "weights/x": np.zeros(2, np.float32)},
    "nan optimizer state": lambda t: {**t, "optim/m": np.array([np.nan], np.float32)},
}


@pytest.mark.parametrize("name", sorted(TENSOR_MUTATIONS))
def test_malformed_tensors_are_a_checkpoint_error(name, real, tmp_path, capsys):
    meta, tensors = real
    path = tmp_path / "bad.safetensors"
    write_safetensors(path, TENSOR_MUTATIONS[name](dict(tensors)), meta)
    with pytest.raises(CheckpointError):
        ckpt.load(path)
    assert main(["generate", str(path), "--length", "5"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_f8_tensors_are_refused_and_bf16_converted(real, tmp_path):
    meta, tensors = real
    bias = tensors["param/out.bias"]
    rest = {k: v for k, v in tensors.items() if k != "param/out.bias"}
    path = tmp_path / "f8.safetensors"
    write_safetensors(path, rest, meta, {"param/out.bias": ("F8_E4M3", bias.shape,
                                                            bytes(bias.size))})
    with pytest.raises(CheckpointError, match="F8_E4M3"):
        ckpt.load(path)
    rounded = (bias.astype(np.float32).view(np.uint32) & 0xFFFF0000).view(np.float32)
    bf16 = (rounded.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = tmp_path / "bf16.safetensors"
    write_safetensors(path, rest, meta, {"param/out.bias": ("BF16", bias.shape, bf16)})
    model = ckpt.load(path).model()
    assert np.array_equal(model.params["out.bias"], rounded)


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"\xff" * 64, b"not a checkpoint",
                                  struct.pack("<Q", 10 ** 15) + b"{}",
                                  struct.pack("<Q", 2) + b"{}",
                                  struct.pack("<Q", 8) + b"[1,2,3] "])
def test_garbage_files_are_a_checkpoint_error(data, tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        ckpt.load(path)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES_OK)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_charforge_errors(data, tmp_path):
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(data)
    with pytest.raises(CharforgeError):
        ckpt.load(path)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES_OK)
@given(extra=st.dictionaries(st.sampled_from(["model", "vocab", "format_version", "train",
                                              "format"]), JSON, max_size=3))
def test_arbitrary_json_headers_only_raise_checkpoint_errors(extra, real, tmp_path):
    meta, tensors = real
    path = tmp_path / "fuzz.safetensors"
    write_safetensors(path, tensors, {**meta, **extra})
    try:
        ckpt.load(path).model()
    except CheckpointError:
        pass


# --------------------------------------------------------------------- extremes
@pytest.mark.parametrize("argv", [["--temperature", "1e-10"], ["--temperature", "1e-30"],
                                  ["--temperature", "5e-324"],
                                  ["--sampler", "sharpened", "--alpha", "1e10"],
                                  ["--sampler", "top_k", "--k", "5", "--temperature", "1e-300"]])
def test_tiny_temperatures_give_argmax(argv, capsys):
    base = ["generate", "shakespeare", "--prime", "ROMEO:", "--seed", "1", "--length", "120"]
    assert main([*base, "--sampler", "argmax"]) == 0
    greedy = capsys.readouterr().out
    assert main([*base, *argv]) == 0
    assert capsys.readouterr().out == greedy


@pytest.mark.parametrize("sampler,params", [("temperature", {"temperature": 5e-324}),
                                            ("temperature", {"temperature": 1e-30}),
                                            ("sharpened", {"alpha": 1e10}),
                                            ("top_p", {"p": 0.5, "temperature": 1e-200})])
def test_python_samplers_reach_the_argmax_limit(sampler, params):
    from charforge.generation.samplers import get_sampler
    rng = np.random.default_rng(0)
    logits = np.random.default_rng(1).normal(0, 3, 65)
    s = get_sampler(sampler)
    assert all(s.fn(logits, rng, **params) == int(np.argmax(logits)) for _ in range(50))


def test_thread_counts_are_bounded(capsys):
    import charforge
    assert main(["--threads", "100000", "generate", "--length", "5"]) == 2
    assert "from 1 to 256" in capsys.readouterr().err
    for bad in (0, 257, 2.5, True, "2"):
        with pytest.raises(CharforgeError, match="thread count"):
            charforge.set_num_threads(bad)


def test_a_closed_stdout_ends_generate_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "charforge", "generate", "--length", "20000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(proc.stdout.read(10)) == 10
    proc.stdout.close()                               # `| head -c 10`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141) and "Traceback" not in err and "Error" not in err


# --------------------------------------------------------------------- settings
TOML_CASES = [
    ('hidden = "abc"', "hidden must be a whole number"),
    ('lr = "fast"', "lr must be a number"),
    ('dropout = "0.1"', "dropout must be a number"),
    ("seed = -1", "seed must be a whole number from 0 to"),
    ("seed = 1.5", "seed must be a whole number"),
    ('corpus_options = "x"', "corpus_options must be a table"),
    ('max_steps = "3"', "max_steps must be a whole number"),
    ("epochs = 1.5", "epochs must be a whole number"),
    ("epochs = true", "epochs must be a whole number"),
    ("layers = 1979-05-27", "layers must be a whole number"),
    ("lr = nan", "lr must be a number"),
    ("lr = inf", "lr must be a number"),
    ("hidden = 100000000", "hidden must be a whole number from 1 to 65,536"),
    ("layers = 1000", "layers must be a whole number from 1 to 64"),
    ("batch = 0", "batch must be a whole number from 1 to"),
    ("sample_length = 1000000000", "sample_length must be a whole number from 0 to 100,000"),
    ('cell = 3', "cell must be text"),
    ('embedding = "wide"', "embedding must be a whole number from 1 to 65,536 or none"),
    ("optimizer_options = 5", "optimizer_options must be a table"),
    ("nonsense = 1", "unknown training setting 'nonsense'"),
    ("hidden = [1, 2]", "hidden must be a whole number"),
    ("lr = 1e-3\nlr = 2e-3", "not valid TOML"),
]


@pytest.mark.parametrize("text,match", TOML_CASES)
def test_bad_toml_settings_are_one_line(text, match, tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(text + "\n")
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--corpus", "textfile", "--path",
                 str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and "Traceback" not in err
    assert not out.exists()


def test_non_utf8_toml(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_bytes(b'corpus = "\xff\xfe"\n')
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize("line,match", [("hidden=big", "hidden must be a whole number"),
                                        ("lr=fast", "lr must be a number"),
                                        ("seed=-1", "seed must be a whole number from 0 to")])
def test_repl_train_settings_are_sentences(line, match, tmp_path):
    from conftest import SHAKESPEARE_HEAD

    from charforge.cli.repl.session import Repl
    repl = Repl("shakespeare")
    repl.corpus = ("textfile", {"path": str(SHAKESPEARE_HEAD)})
    with pytest.raises(CharforgeError, match=match):
        repl.cmd_train([line, f"out={tmp_path / 'r'}"])
    assert not (tmp_path / "r").exists()


def test_a_sampler_returning_a_bool_is_refused():
    import charforge
    from charforge.core import plugins
    from charforge.core.hookspecs import hookimpl
    from charforge.generation.samplers import Sampler

    class BoolPick:
        @hookimpl
        def charforge_register_samplers(self, register):
            register(Sampler("bool_pick", "returns True", lambda logits, rng: True))
    plugins.register_plugin(BoolPick(), "boolpick")
    try:
        model, _ = charforge.load_pretrained("shakespeare")
        with pytest.raises(CharforgeError, match="returned True, not the index"):
            charforge.generate(model, "ROMEO:", 5, "bool_pick", seed=1)
    finally:
        plugins.unregister_plugin("boolpick")


@pytest.mark.parametrize("argv", [
    ["generate", "--seed", "-1"], ["generate", "--length", "1000000000000"],
    ["generate", "--length", str(2 ** 63)], ["generate", "--k", str(2 ** 31)],
    ["generate", "--num", "0"], ["generate", "--length", "ten"],
    ["gradcheck", "--seq", "1000000000"], ["gradcheck", "--seed", "-3"],
    ["summary", "--hidden", "1000000000"], ["summary", "--layers", "1000000"],
    ["--threads", "0", "generate"], ["train", "--hidden", "abc"], ["nosuchcommand"],
])
def test_out_of_range_numbers_and_unknown_words_are_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "usage:" not in err


# --------------------------------------------------------------------- resume
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real run folder's last checkpoint: (metadata, tensors)."""
    from conftest import SHAKESPEARE_HEAD
    from safetensors.numpy import load_file

    from charforge.training.settings import TrainConfig
    from charforge.training.trainer import Trainer
    out = tmp_path_factory.mktemp("trained") / "run"
    cfg = TrainConfig(corpus="textfile", corpus_options={"path": str(SHAKESPEARE_HEAD)},
                      cell="lstm", layers=1, hidden=8, embedding=4, batch=4, seq=16,
                      max_steps=5, batching="streams", log_every=1)
    Trainer(cfg, out).run()
    path = ckpt.latest_in(out)
    return ckpt.load(path).meta, load_file(str(path))


RESUME_MUTATIONS = [
    ("train.position", KeyError), ("train.optimizer", KeyError), ("train.history", KeyError),
    ("train.position.step", "3"), ("train.position.step", -1),
    ("train.position.epoch", None), ("train.position.batch_index", 2.5),
    ("train.position.smooth_loss", "low"), ("train.config.hidden", "abc"),
    ("train.config.lr", "fast"), ("train.config.epochs", 1.5),
    ("train.config", "x"), ("train.config.nonsense", 1), ("train.optimizer", []),
    ("train.optimizer.step", "x"), ("train.optimizer.step", -3),
    ("train.optimizer.config", KeyError), ("train.optimizer.config.lr", "fast"),
    ("train.history", {"a": 1}), ("train.history", [1, 2]), ("train", None),
    ("train.config.batching", "diagonal"), ("train.config.seed", -5),
]


@pytest.mark.parametrize("where,value", RESUME_MUTATIONS)
def test_resume_from_corrupt_training_metadata_is_one_line(where, value, trained, tmp_path,
                                                           capsys):
    meta, tensors = trained
    folder = tmp_path / "run"
    folder.mkdir()
    write_safetensors(folder / ckpt.step_name(5), tensors, _set(meta, where, value))
    assert main(["train", "--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == \
        [ckpt.step_name(5)]                         # nothing created


# --------------------------------------------------------------------- the REPL
REPL_LINES = [
    ":train hidden=big", ":train lr=fast", ":train seed=-1", ":train epochs=1.5",
    ":train nonsense=1", ":train hidden", ":save /proc/charforge/nope", ":save",
    ":load /nonexistent/model", ":load", ":sampler nope", ":sampler top_k k=0",
    ":sampler top_k k=abc", ":sampler top_p p=2", ":sampler temperature heat=2",
    ":temp 0", ":temp hot", ":temp", ":length -5", ":length abc", ":length 1000000000",
    ":seed -1", ":seed x", ":seed", ":corpus nope", ":corpus textfile path=/no/file.txt",
    ":corpus ag_news split=nope", ":nosuchcommand", ':"unclosed', "Zoë", ":help nope",
    ":save .", ":load nope",
]


@pytest.mark.parametrize("line", REPL_LINES)
def test_repl_mistakes_are_charforge_errors(line, tmp_path, monkeypatch):
    """What the REPL shows as `error: <sentence>`: a CharforgeError, never another type,
    nothing written, and the REPL goes on."""
    from charforge.cli.repl.session import Repl
    monkeypatch.chdir(tmp_path)
    repl = Repl("shakespeare")
    with pytest.raises(CharforgeError) as err:
        repl.handle(line)
    assert "\n" not in str(err.value) and "Error" not in str(err.value)
    assert list(tmp_path.iterdir()) == []
    repl.handle(":length 5")                       # still works
    assert repl.length == 5


def _toml_literal():
    scalars = st.one_of(
        st.integers(-2 ** 70, 2 ** 70).map(str), st.floats(allow_nan=True).map(
            lambda f: "nan" if f != f else ("inf" if f == float("inf") else
                                            "-inf" if f == float("-inf") else repr(f))),
        st.booleans().map(lambda b: "true" if b else "false"),
        st.text(max_size=6).map(lambda t: '"' + t.replace("\\", "").replace('"', "")
                                .replace("\n", "") + '"'),
        st.just("1979-05-27"), st.just("07:32:00"), st.just("{}"), st.just('{ a = 1 }'))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3).map(
        lambda xs: "[" + ", ".join(xs) + "]"), max_leaves=4)


SETTING_KEYS = st.sampled_from(sorted(__import__("charforge.training.settings", fromlist=["specs"])
                                      .specs()) + ["nonsense", "max-steps", "EPOCHS"])


@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES_OK)
@given(lines=st.lists(st.tuples(SETTING_KEYS, _toml_literal()), max_size=6),
       noise=st.text(max_size=20))
def test_arbitrary_toml_documents_only_raise_charforge_errors(lines, noise, tmp_path):
    from charforge.training.settings import TrainConfig, load_toml
    path = tmp_path / "fuzz.toml"
    text = "".join(f"{k} = {v}\n" for k, v in lines)
    for doc in (text, text + noise):
        path.write_text(doc, encoding="utf-8", errors="surrogatepass")
        try:
            TrainConfig.from_dict(load_toml(path)).validate()
        except CharforgeError:
            pass


@pytest.mark.parametrize("argv,expected", [
    (["generate", "--lenght", "5"], "charforge generate: error: unrecognized arguments: "
                                    "--lenght; did you mean --length? (see charforge generate "
                                    "--help)"),
    (["train", "--hiden", "5"], "did you mean --hidden? (see charforge train --help)"),
    (["--bogus"], "charforge: error: unrecognized arguments: --bogus (see charforge --help)"),
])
def test_a_misspelt_flag_points_at_the_subcommands_help(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


def test_save_into_a_missing_folder_is_refused(tmp_path):
    import os
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
    target = tmp_path / "no" / "such" / "dir" / "x.safetensors"
    done = subprocess.run([sys.executable, "-m", "charforge", "repl"], env=env,
                          input=f":save {target}\n:quit\n", capture_output=True, text=True,
                          timeout=120)
    said = done.stdout + done.stderr
    assert f"the folder {target.parent} does not exist" in said
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("command,flag,allowed,outside", [
    ("length", ["generate", "--length"], (0, 100_000_000), 100_000_001),
    ("num", ["generate", "--num"], (1, 10_000), 10_001),
    ("seed", ["generate", "--seed"], (0, 2 ** 63 - 1), 2 ** 63),
    ("threads", ["--threads"], (1, 256), 257),
])
def test_the_repl_and_the_command_line_take_a_setting_alike(command, flag, allowed, outside,
                                                             capsys):
    """One declaration per setting: the REPL's :length and the command line's --length accept
    the same numbers and word the same range."""
    from charforge.cli.repl.session import Repl
    repl = Repl("shakespeare")
    words = f"from {allowed[0]:,} to {allowed[1]:,}"
    for value in allowed:
        getattr(repl, f"cmd_{command}")([str(value)])
    with pytest.raises(CharforgeError, match=words):
        getattr(repl, f"cmd_{command}")([str(outside)])
    assert main([*flag, str(outside), *(["generate"] if flag == ["--threads"] else [])]) == 2
    assert words in capsys.readouterr().err
    repl.cmd_threads(["auto"])


def test_viz_units_are_checked_alike(tmp_path, capsys):
    from charforge.cli.repl.session import Output, Repl
    repl = Repl("shakespeare")
    repl.last = Output(["ROMEO: " * 20])
    with pytest.raises(CharforgeError, match="layer: a whole number from 0 to 63"):
        repl.cmd_viz(["h", "64", "1"])
    with pytest.raises(CharforgeError, match="top: a whole number from 1 to 100"):
        repl.cmd_viz(["top", "101"])
    assert main(["viz", "--prime", "ROMEO: " * 20, "--top", "101"]) == 2
    assert "from 1 to 100" in capsys.readouterr().err
