"""llm-charforge through llm's own Python API and CLI: the shipped model by name, options
mapped onto charforge's samplers (the same text as charforge for the same seed), streaming,
conversations, registered checkpoints, and an llm that keeps working without charforge."""
import importlib.util
import os
import shutil
import subprocess
import sys

import llm
import llm_charforge
import pytest
from click.testing import CliRunner
from llm.cli import cli

import charforge.checkpoints.pretrained as pretrained
from charforge.generation.engine import generate


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    return tmp_path / "llm"


@pytest.fixture(scope="module")
def shakespeare():
    model, _ = pretrained.load("shakespeare")
    return model


def test_the_shipped_model_is_registered_without_importing_charforge():
    code = ("import sys, llm; ids = [m.model_id for m in llm.get_models()]; "
            "print('charforge-shakespeare' in ids, 'charforge' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert done.stdout.split() == ["True", "False"], done.stderr


def test_same_text_as_charforge_for_the_same_seed(shakespeare):
    model = llm.get_model("charforge-shakespeare")
    response = model.prompt("ROMEO:", length=60, seed=4, temperature=0.6)
    assert response.text() == generate(shakespeare, "ROMEO:", 60, "temperature", 4,
                                       temperature=0.6)
    assert response.response_json["seed"] == 4
    top_k = model.prompt("ROMEO:", length=40, seed=1, sampler="top_k", k=3).text()
    assert top_k == generate(shakespeare, "ROMEO:", 40, "top_k", 1, k=3)
    sharp = model.prompt("ROMEO:", length=40, seed=1, sampler="sharpened",
                         params="alpha=3,floor=0.01").text()
    assert sharp == generate(shakespeare, "ROMEO:", 40, "sharpened", 1, alpha=3, floor=0.01)


def test_streams_in_pieces():
    response = llm.get_model("charforge-shakespeare").prompt("KING:", length=300, seed=2)
    pieces = list(response)
    assert len(pieces) > 3 and len("".join(pieces)) == 300


def test_a_conversation_continues_the_whole_transcript(shakespeare):
    chat = llm.get_model("charforge-shakespeare").conversation()
    first = chat.prompt("ROMEO:", length=50, seed=1).text()
    second = chat.prompt("\nJULIET:", length=50, seed=2).text()
    assert second == generate(shakespeare, "ROMEO:" + first + "\nJULIET:", 50, "temperature",
                              2, temperature=0.8)


def test_mistakes_are_one_line_model_errors():
    model = llm.get_model("charforge-shakespeare")
    with pytest.raises(llm.ModelError, match="^unknown sampler 'nope'; choose one of: "):
        model.prompt("ROMEO:", sampler="nope", length=5).text()
    with pytest.raises(llm.ModelError, match="characters this model never saw"):
        model.prompt("ROMEO:\u2603", length=5).text()
    with pytest.raises(llm.ModelError, match="params must look like key=value, got 'alpha'"):
        model.prompt("ROMEO:", params="alpha", sampler="sharpened", length=5).text()
    with pytest.raises(Exception, match="greater than 0"):
        model.prompt("ROMEO:", temperature=-1, length=5).text()


def test_registered_checkpoints_become_models(tmp_path, shakespeare):
    path = tmp_path / "mine.safetensors"
    shutil.copy(pretrained.available()["shakespeare"], path)
    runner = CliRunner()
    done = runner.invoke(cli, ["charforge", "register", "mine", str(path)])
    assert done.exit_code == 0, done.output
    assert "charforge-mine" in runner.invoke(cli, ["charforge", "models"]).output
    text = llm.get_model("charforge-mine").prompt("ROMEO:", length=30, seed=5).text()
    assert text == generate(shakespeare, "ROMEO:", 30, seed=5, temperature=0.8)
    clash = runner.invoke(cli, ["charforge", "register", "shakespeare", str(path)])
    assert clash.exit_code != 0 and "shipped model" in clash.output
    assert runner.invoke(cli, ["charforge", "unregister", "mine"]).exit_code == 0
    with pytest.raises(llm.UnknownModelError):
        llm.get_model("charforge-mine")


def test_the_command_line_and_chat():
    run = ["llm", "-m", "charforge-shakespeare", "ROMEO:", "-o", "length", "40", "-o", "seed",
           "3"]
    exe = shutil.which("llm") or os.path.join(os.path.dirname(sys.executable), "llm")
    first = subprocess.run([exe, *run[1:]], capture_output=True, text=True, timeout=120)
    again = subprocess.run([exe, *run[1:]], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and len(first.stdout.strip()) > 10, first.stderr
    assert first.stdout == again.stdout
    chat = subprocess.run([exe, "chat", "-m", "charforge-shakespeare", "-o", "length", "40"],
                          input="ROMEO:\nexit\n", capture_output=True, text=True, timeout=120)
    assert chat.returncode == 0 and "Chatting with charforge-shakespeare" in chat.stdout


def test_llm_without_charforge_keeps_working(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "charforge" else real(name, *a))
    assert llm_charforge.shipped() == []
    monkeypatch.setitem(sys.modules, "charforge.generation.engine", None)    # import fails
    model = llm_charforge.CharforgeModel("mine", str(tmp_path / "x.safetensors"))
    with pytest.raises(llm.ModelError, match="charforge is not installed: pip install"):
        model.prompt("ROMEO:", length=5).text()
