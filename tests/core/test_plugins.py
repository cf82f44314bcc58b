"""The plugin registry: built-ins through the hooks, real entry points, clashes, broken
plugins, misspelt hooks, switches, the listing commands and the hook documentation."""
import importlib.metadata
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from charforge.cli.main import main
from charforge.core import hookspecs, plugins
from charforge.core.errors import CharforgeError
from charforge.core.hookspecs import hookimpl
from charforge.data.corpora import get_corpus
from charforge.generation.samplers import Sampler
from charforge.training.trainer import TrainingCallback

ROOT = Path(__file__).resolve().parents[2]


def make_dist(site: Path, name: str, module_source: str) -> None:
    """A real installed distribution (dist-info with an entry point) under `site`."""
    (site / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{name}-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[charforge]\n{name} = {name}\n")
    (info / "RECORD").write_text("")


TINY = '''
    from charforge import Sampler, hookimpl

    def first(logits, rng):
        return int(logits.argmax())

    @hookimpl
    def charforge_register_samplers(register):
        register(Sampler("tiny_greedy", "a test sampler from an installed package", first))
'''


def run_cli(args, site: Path, **env):
    e = dict(os.environ, PYTHONPATH=str(site), **env)
    return subprocess.run([sys.executable, "-m", "charforge", *args], capture_output=True,
                          text=True, env=e, timeout=120)


def test_builtins_register_through_the_hooks():
    reg = plugins.registry()
    assert {"shakespeare", "harry_potter", "ag_news", "textfile"} <= set(reg.items["corpora"])
    assert {"rnn", "gru", "lstm"} <= set(reg.items["cells"])
    assert {"argmax", "temperature", "sharpened", "top_k", "top_p"} <= \
        set(reg.items["samplers"])
    assert plugins.provider("samplers", "argmax") == "charforge.builtins"
    assert plugins.provider("cells", "lstm") == "charforge.builtins"
    assert plugins.plugin_manager().get_plugin(plugins.BUILTINS) is not None


def test_installed_entry_point_is_loaded(tmp_path):
    make_dist(tmp_path, "tinyplug", TINY)
    r = run_cli(["samplers"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "tiny_greedy" in r.stdout and "package tinyplug" in r.stdout
    r = run_cli(["plugins"], tmp_path)
    assert "tinyplug" in r.stdout and "0.3" in r.stdout and "register_samplers" in r.stdout


def test_block_and_allow_switches(tmp_path):
    make_dist(tmp_path, "tinyplug", TINY)
    assert "tiny_greedy" not in run_cli(["samplers"], tmp_path,
                                        CHARFORGE_BLOCK_PLUGINS="tinyplug").stdout
    assert "tiny_greedy" not in run_cli(["samplers"], tmp_path,
                                        CHARFORGE_LOAD_PLUGINS="").stdout
    assert "tiny_greedy" in run_cli(["samplers"], tmp_path,
                                    CHARFORGE_LOAD_PLUGINS="tinyplug").stdout


def test_plugin_that_fails_to_import_is_reported_and_skipped(tmp_path):
    make_dist(tmp_path, "brokenplug", "raise ImportError('needs libfoo')\n")
    r = run_cli(["samplers"], tmp_path)
    assert r.returncode == 0
    assert "temperature" in r.stdout
    lines = [ln for ln in r.stderr.splitlines() if "brokenplug" in ln]
    assert len(lines) == 1 and "needs libfoo" in lines[0] and "skipped" in lines[0]


def test_clash_names_both_providers(tmp_path):
    make_dist(tmp_path, "clashplug", TINY.replace('"tiny_greedy"', '"argmax"'))
    r = run_cli(["samplers"], tmp_path)
    assert r.returncode == 2
    err = r.stderr.strip()
    assert "\n" not in err and "charforge.builtins" in err and "clashplug" in err


def test_misspelt_hook_fails_early(tmp_path):
    make_dist(tmp_path, "typoplug", '''
        from charforge import hookimpl

        @hookimpl
        def charforge_register_samplerz(register):
            pass
    ''')
    r = run_cli(["samplers"], tmp_path)
    assert r.returncode == 2 and "charforge_register_samplerz" in r.stderr


class RaisingPlugin:
    @hookimpl
    def charforge_register_corpora(self, register):
        raise RuntimeError("the corpus server is down")


class ClashingPlugin:
    @hookimpl
    def charforge_register_samplers(self, register):
        register(Sampler("temperature", "impostor", lambda logits, rng: 0))


def test_hook_that_raises_is_reported_and_skipped(capsys):
    plugins.register_plugin(RaisingPlugin(), "raiser")
    try:
        names = plugins.names("corpora")
        assert "shakespeare" in names
        err = capsys.readouterr().err
        assert "raiser" in err and "the corpus server is down" in err
    finally:
        plugins.unregister_plugin("raiser")


def test_clash_in_process_is_one_clear_error():
    plugins.register_plugin(ClashingPlugin(), "impostor")
    try:
        with pytest.raises(CharforgeError, match="clash.*charforge.builtins.*impostor"):
            plugins.registry()
    finally:
        plugins.unregister_plugin("impostor")
    assert plugins.lookup("samplers", "temperature").description != "impostor"


def test_unknown_names_are_one_line_errors():
    with pytest.raises(CharforgeError, match="unknown corpus 'nope'.*shakespeare"):
        plugins.lookup("corpora", "nope")
    with pytest.raises(CharforgeError, match="unknown sampler"):
        plugins.lookup("samplers", "nope")


@pytest.mark.parametrize("kind,expect", [
    ("corpora", ["shakespeare", "needs a file", "textfile", "documents"]),
    ("cells", ["lstm", "gru", "rnn"]),
    ("samplers", ["temperature", "top_p", "p=0.9"]),
])
def test_listing_commands(kind, expect, capsys):
    assert main([kind]) == 0
    out = capsys.readouterr().out
    for word in expect:
        assert word in out


def test_every_hookspec_is_documented():
    doc = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (\w+)", doc, flags=re.M))
    specs = {n for n, f in inspect.getmembers(hookspecs, inspect.isfunction)
             if n.startswith("charforge_")}
    assert specs, "no hookspecs found"
    missing = specs - headings
    assert not missing, f"hooks without a section in docs/plugins.md: {sorted(missing)}"
    for name in specs:                        # each section shows a call and an example
        section = doc.split(f"### {name}", 1)[1].split("\n### ", 1)[0]
        assert f"`{name}(" in section and "```python" in section and "@hookimpl" in section
    for name, f in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("charforge_"):
            assert f.__doc__ and f.__doc__.strip(), f"{name} has no docstring"


def test_example_plugin_package_when_installed():
    """CI installs plugins/charforge-typical (CHARFORGE_REQUIRE_PLUGIN_EXAMPLE=1 makes its
    absence a failure); the sampler it ships is then registered."""
    try:
        importlib.metadata.distribution("charforge-typical")
    except importlib.metadata.PackageNotFoundError:
        if os.environ.get("CHARFORGE_REQUIRE_PLUGIN_EXAMPLE") == "1":
            pytest.fail("plugins/charforge-typical is not installed")
        pytest.skip("pip install ./plugins/charforge-typical to run this test")
    assert "typical" in plugins.names("samplers")
    assert "package charforge-typical" in plugins.provider("samplers", "typical")


class FlakyCorpusPlugin:
    @hookimpl
    def charforge_register_corpora(self, register):
        from charforge import Corpus

        class Flaky(Corpus):
            name = "flaky"
            description = "raises when read"

            def text_source(self, **options):
                raise ConnectionResetError("server went away")
        register(Flaky())


def test_corpus_plugin_that_raises_is_one_line_error(capsys):
    plugins.register_plugin(FlakyCorpusPlugin(), "flaky-plugin")
    try:
        assert main(["train", "--corpus", "flaky", "--out", "unused"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "flaky-plugin" in err and "server went away" in err
    finally:
        plugins.unregister_plugin("flaky-plugin")


def test_a_raising_command_hook_and_malformed_samplers_are_skipped(capsys):
    """One warning line each, naming the plugin; every other command still works."""
    class Broken:
        @hookimpl
        def charforge_register_commands(self, cli):
            raise RuntimeError("command hook bug")

        @hookimpl
        def charforge_register_samplers(self, register):
            from charforge import Sampler
            register(Sampler("", "no name", lambda logits, rng: 0))
            register(lambda logits, rng: 0)             # not a Sampler

    plugins.register_plugin(Broken(), "broken")
    try:
        from charforge.cli.main import main
        assert main(["samplers"]) == 0
        out, err = capsys.readouterr()
        assert "argmax" in out
        warnings = [ln for ln in err.splitlines() if "broken" in ln]
        assert len(warnings) == 3 and all(ln.startswith("charforge: warning:") for ln in warnings)
        assert any("command hook bug" in ln for ln in warnings)
        assert any("without a name" in ln for ln in warnings)
        assert any("not a Sampler" in ln for ln in warnings)
    finally:
        plugins.unregister_plugin("broken")


class CountingCallback(TrainingCallback):
    def __init__(self):
        self.steps = []

    def on_step(self, trainer, metrics):
        self.steps.append(metrics["step"])


class CallbackPlugin:
    @hookimpl
    def charforge_register_callbacks(self, register):
        register(CountingCallback)              # a class: made anew per Trainer
        register(CountingCallback())            # an instance: copied per Trainer


def test_plugin_callbacks_are_fresh_for_each_trainer():
    plugins.register_plugin(CallbackPlugin(), "counting")
    try:
        first, second = plugins.plugin_callbacks(), plugins.plugin_callbacks()
        mine = [c for c in first if isinstance(c, CountingCallback)]
        assert len(mine) == 2
        mine[0].steps.append(1)
        mine[1].steps.append(1)
        assert all(c.steps == [] for c in second if isinstance(c, CountingCallback))
        assert not any(a is b for a in first for b in second)
    finally:
        plugins.unregister_plugin("counting")


def test_a_cell_subclass_that_changes_the_math_leaves_the_fused_kernel():
    from charforge.nn.cells import LSTMCell

    class Same(LSTMCell):
        name = "same_lstm"

    class Changed(LSTMCell):
        name = "changed_lstm"

        def forward(self, ws, params, threads):
            super().forward(ws, params, threads)

    assert Same.kernel_code == LSTMCell.kernel_code == 2
    assert Changed.kernel_code is None
    assert get_corpus("shakespeare").name == "shakespeare"


HEAVY = '''
    import os
    from pathlib import Path

    from charforge import hookimpl

    Path(os.environ["HEAVY_MARKER"]).write_text("imported")

    def hello(args):
        print("hello from a plugin")
        return 0

    @hookimpl
    def charforge_register_commands(cli):
        cli.add_parser("hello", help="say hello from a plugin").set_defaults(func=hello)
'''


def test_help_and_version_do_not_import_plugins(tmp_path):
    """A heavy plugin must not slow `charforge --help`: after one full load the plugin
    commands are listed from the cache; a changed installation loads them afresh."""
    site, marker = tmp_path / "site", tmp_path / "imported"
    site.mkdir()
    make_dist(site, "heavy_plugin", HEAVY)
    env = {"HEAVY_MARKER": str(marker), "CHARFORGE_CACHE_DIR": str(tmp_path / "cache")}
    assert run_cli(["--version"], site, **env).returncode == 0
    assert not marker.exists()
    first = run_cli(["--help"], site, **env)                  # nothing cached: a full load
    assert first.returncode == 0 and "hello" in first.stdout and marker.exists()
    marker.unlink()
    again = run_cli(["--help"], site, **env)
    assert again.returncode == 0 and "say hello from a plugin" in again.stdout
    assert not marker.exists()
    done = run_cli(["hello"], site, **env)
    assert done.returncode == 0 and done.stdout.strip() == "hello from a plugin"
    marker.unlink()
    info = next(site.glob("heavy_plugin-*.dist-info"))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: heavy_plugin\nVersion: 0.4\n")
    upgraded = run_cli(["--help"], site, **env)               # another version: load again
    assert "hello" in upgraded.stdout and marker.exists()
    marker.unlink()
    none = run_cli(["--help"], site, CHARFORGE_LOAD_PLUGINS="", **env)
    assert "hello" not in none.stdout and not marker.exists()
