"""charforge models inside simonw's `llm`: `llm -m charforge-shakespeare "ROMEO:"`.

Every model charforge ships is registered as `charforge-NAME`, and so is every checkpoint or
run folder registered with `llm charforge register NAME PATH` (kept in llm's user folder).
Options map onto charforge's samplers. Nothing of charforge (or numpy) is imported until a
model runs, so `llm --help` stays fast, and an llm without charforge installed works on,
saying how to install it when a charforge model is asked for.
"""
from __future__ import annotations

import importlib.util
import json
import queue
import threading
from pathlib import Path

import click
import llm
from pydantic import Field

CONTEXT_CHARS = 10_000            # how much of a conversation a reply is conditioned on
REGISTRY_FILE = "charforge-models.json"


def _registry_path() -> Path:
    return llm.user_dir() / REGISTRY_FILE


def registered() -> dict[str, str]:
    """User-registered models: name -> checkpoint file or run folder."""
    try:
        data = json.loads(_registry_path().read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _save_registry(models: dict[str, str]) -> None:
    path = _registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(models, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def shipped() -> list[str]:
    """Names of the models inside the installed charforge, found without importing it."""
    spec = importlib.util.find_spec("charforge")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations))) / "checkpoints" / "shipped"
    return sorted(p.stem for p in folder.glob("*.safetensors"))


def _charforge():
    try:
        import charforge
        import charforge.generation.engine  # noqa: F401  (the package's own, not a namesake)
    except ImportError:
        raise llm.ModelError("charforge is not installed: pip install charforge") from None
    return charforge


class CharforgeModel(llm.Model):
    """One charforge model; its weights load on first use."""
    can_stream = True

    class Options(llm.Options):
        temperature: float | None = Field(None, gt=0, description="randomness (default 0.8)")
        sampler: str | None = Field(None, description="charforge sampler name (default "
                                                      "temperature; `charforge samplers`)")
        length: int | None = Field(None, ge=1, le=100_000,
                                   description="characters to generate (default 300)")
        seed: int | None = Field(None, ge=0, lt=2**63, description="same seed, same text")
        k: int | None = Field(None, ge=1, description="top_k: characters kept")
        p: float | None = Field(None, gt=0, le=1, description="top_p: probability kept")
        params: str | None = Field(None, description="other sampler parameters: a=1,b=2")

    def __init__(self, name: str, source: str) -> None:
        self.model_id = f"charforge-{name}"
        self.source = source
        self._model = None

    def __str__(self) -> str:
        return f"charforge: {self.model_id}"

    def _loaded(self):
        if self._model is None:
            charforge = _charforge()
            try:
                self._model, _ = charforge.load_pretrained(self.source)
            except charforge.CharforgeError as exc:
                raise llm.ModelError(str(exc)) from None
        return self._model

    def settings(self, options) -> tuple[str, dict]:
        """The sampler and its parameters from llm's -o options."""
        charforge = _charforge()
        from charforge.cli.parsing import key_values
        try:
            params = key_values([p for p in (options.params or "").split(",") if p], "params")
        except charforge.CharforgeError as exc:
            raise llm.ModelError(str(exc)) from None
        for name in ("temperature", "k", "p"):
            if getattr(options, name) is not None:
                params[name] = getattr(options, name)
        return options.sampler or "temperature", params

    def context(self, prompt, conversation) -> str:
        """What the reply continues: the system text, the conversation so far and the new
        prompt, joined as one text (a character model reads text, not turns)."""
        parts = [prompt.system or ""]
        for earlier in (conversation.responses if conversation else []):
            parts += [earlier.prompt.prompt or "", earlier.text()]
        parts.append(prompt.prompt or "")
        return "".join(parts)[-CONTEXT_CHARS:]

    def execute(self, prompt, stream, response, conversation=None):
        charforge = _charforge()
        model = self._loaded()
        sampler, params = self.settings(prompt.options)
        length = prompt.options.length or 300
        seed = prompt.options.seed
        if seed is None:
            seed = charforge.generation.engine.fresh_seed()
        response.response_json = {"sampler": sampler, "params": params, "seed": seed,
                                  "length": length}
        pieces: queue.Queue = queue.Queue()
        stop = threading.Event()
        done = object()

        def take(_row: int, piece: str) -> None:
            if stop.is_set():
                raise _Stopped
            pieces.put(piece)

        def run() -> None:
            try:
                charforge.generate(model, self.context(prompt, conversation),
                                              length, sampler, seed, callback=take,
                                              keep_text=False, **params)
            except _Stopped:
                pass
            except Exception as exc:       # handed to the consumer, raised there
                pieces.put(exc)
            pieces.put(done)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            while (item := pieces.get()) is not done:
                if isinstance(item, charforge.CharforgeError):
                    raise llm.ModelError(str(item))
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join()


class _Stopped(Exception):
    """The reader went away: end the generation."""


@llm.hookimpl
def register_models(register):
    models = {name: name for name in shipped()}
    models.update(registered())
    for name, source in models.items():
        register(CharforgeModel(name, source))


@llm.hookimpl
def register_commands(cli):
    @cli.group(name="charforge")
    def group():
        "charforge models: the shipped ones and checkpoints you register"

    @group.command(name="models")
    def list_models():
        "List the charforge models llm can use"
        for name in shipped():
            click.echo(f"charforge-{name}  (shipped with charforge)")
        for name, path in sorted(registered().items()):
            click.echo(f"charforge-{name}  {path}")

    @group.command(name="register")
    @click.argument("name")
    @click.argument("path", type=click.Path(exists=True, resolve_path=True))
    def register_model(name, path):
        "Register a checkpoint file or run folder as charforge-NAME"
        if not name.replace("-", "").replace("_", "").isalnum():
            raise click.ClickException(f"{name!r}: use letters, digits, - and _ only")
        if name in shipped():
            raise click.ClickException(f"charforge-{name} is a shipped model; choose "
                                       "another name")
        models = registered()
        models[name] = path
        _save_registry(models)
        click.echo(f"registered charforge-{name} -> {path}")

    @group.command(name="unregister")
    @click.argument("name")
    def unregister_model(name):
        "Forget a registered model"
        models = registered()
        if models.pop(name, None) is None:
            raise click.ClickException(f"no registered model {name!r} (llm charforge models)")
        _save_registry(models)
        click.echo(f"unregistered charforge-{name}")
