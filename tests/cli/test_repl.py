"""The real REPL driven through a pseudo-terminal (pexpect), on the shipped model."""
import os
import sys
import time

import pytest
from conftest import shakespeare_head

pytestmark = pytest.mark.slow           # the REPL in a pseudo-terminal

pexpect = pytest.importorskip("pexpect") if os.environ.get("CHARFORGE_REQUIRE_PEXPECT") != "1" \
    else __import__("pexpect")

PROMPT = "» "


@pytest.fixture
def repl(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"),
               TERM="dumb", COLUMNS="100", PYTHONIOENCODING="utf-8")
    child = pexpect.spawn(sys.executable, ["-m", "charforge", "repl"], env=env,
                          encoding="utf-8", timeout=60, dimensions=(40, 100),
                          codec_errors="replace")   # the tty echoes ^C inside a character
    started = time.perf_counter()
    child.expect(PROMPT)
    child.startup_seconds = time.perf_counter() - started
    yield child
    if child.isalive():
        child.terminate(force=True)


def send(child, line):
    child.sendline(line)
    child.expect(PROMPT)
    return child.before


def test_session(repl):
    banner = repl.before
    assert "charforge REPL" in banner and ":help" in banner and ":probs" in banner
    assert "model: shakespeare" in banner

    out = send(repl, ":seed 7")
    out = send(repl, "ROMEO:")
    generated = out.split("ROMEO:", 1)[1].strip()
    assert len(generated) > 100                      # streamed continuation

    out = send(repl, ":sampler top_k k=3 temperature=0.9")
    assert "top_k" in out and "k=3" in out
    out = send(repl, ":temp 0.5")
    assert "temperature=0.5" in out
    out = send(repl, ":length 50")
    out = send(repl, "KING")
    assert len(out.split("KING", 1)[1].strip()) >= 30

    out = send(repl, ":probs ROMEO")
    assert "next character after 'ROMEO'" in out and "':'" in out and "█" in out

    for bad, words in ((":frobnicate", "unknown command :frobnicate"),
                       (":temp -1", "temperature must be a number above 0"),
                       (":sampler nucleus", "unknown sampler 'nucleus'"),
                       ("Zoë says", "never saw: 'ë'"),
                       (":length many", "usage: :length N"),
                       (":precision int4", "usage: :precision fp32|bf16"),
                       (":load /no/such/file.safetensors", "does not exist"),
                       (":corpus harry_potter path=/no/such/book.txt", "harry_potter")):
        out = send(repl, bad)
        errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and words in out, (bad, out)

    out = send(repl, ":precision bf16")             # the prompt says so
    assert "precision bf16" in out and out.rstrip().endswith("· bf16")
    out = send(repl, "KING")
    assert len(out.split("KING", 1)[1].strip()) >= 30
    out = send(repl, ":precision fp32")
    assert "precision fp32" in out and not out.rstrip().endswith("bf16")

    out = send(repl, ":help probs")
    assert ":probs [TEXT]" in out
    out = send(repl, ":info")
    assert "Total" in out and "vocabulary: 65" in out and "validation loss" in out
    assert 'tokens  "\\n ' in out and "\\\\n" not in out   # a newline shows as \n, not \\n
    out = send(repl, ":plugins")
    assert "charforge.builtins" in out

    # Ctrl-C stops a long generation and keeps the session
    send(repl, ":length 1000000")
    repl.sendline("First Citizen:")
    time.sleep(1.5)
    repl.sendintr()
    repl.expect(PROMPT)
    assert "generation stopped" in repl.before
    out = send(repl, ":length 20")
    out = send(repl, ":history")
    assert ":length 20" in out
    repl.sendline(":quit")
    repl.expect(pexpect.EOF)
    repl.wait()
    assert repl.exitstatus == 0


def test_ctrl_d_leaves_and_history_is_saved(repl, tmp_path):
    send(repl, ":length 5")
    repl.sendeof()
    repl.expect(pexpect.EOF)
    history = list(tmp_path.rglob("repl_history"))
    assert history and ":length 5" in history[0].read_text()


def test_startup_is_quick(repl):
    # Generous bound for a loaded CI machine; typical is well under a second.
    assert repl.startup_seconds < 10


def test_train_in_the_repl_then_generate_and_save(repl, tmp_path):
    text = shakespeare_head(8000)
    corpus = tmp_path / "small.txt"
    corpus.write_text(text, encoding="utf-8")
    out = send(repl, f":corpus textfile path={corpus}")
    assert "corpus: textfile" in out
    repl.timeout = 300
    out = send(repl, ":train cell=gru layers=1 hidden=16 embedding=8 batch=8 seq=20 epochs=1")
    said = " ".join(out.split())
    assert "training finished at step" in said and "validation loss" in said
    out = send(repl, ":info")
    assert "gru_0 (GRU)" in out
    out = send(repl, "First")
    assert len(out.split("First", 1)[1].strip()) > 10
    target = tmp_path / "mine.safetensors"
    out = send(repl, f":save {target}")
    assert target.exists()
    out = send(repl, f":load {target}")
    assert "gru 1x16" in out
    out = send(repl, ":load shakespeare")
    assert "lstm" in out
    import subprocess  # the saved model records its corpus
    done = subprocess.run([sys.executable, "-m", "charforge", "eval", str(target)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "val loss" in done.stdout, done.stderr


def test_train_continues_the_loaded_model_and_says_so(repl, tmp_path):
    """:train with no architecture continues the loaded (shipped) model, grows its vocabulary
    for new characters, and says both; init=MODEL starts from another one."""
    corpus = tmp_path / "news.txt"
    corpus.write_text(("Oil hits $46.50 a barrel; 2004 [Q3] up 3% #1\n" * 80)
                      + shakespeare_head(4000), encoding="utf-8")
    send(repl, f":corpus textfile path={corpus}")
    repl.timeout = 300
    out = send(repl, ":train batch=8 seq=20 max_steps=3")
    said = " ".join(out.split())
    assert "continuing the loaded model shakespeare (lstm 2x384)" in said
    assert "new characters:" in said and "#" in said.split("new characters:", 1)[1]
    assert "training reached its budget" in said or "at step 3" in said, said
    out = send(repl, ":train init=shakespeare hidden=64")
    assert "brings its own architecture; leave out hidden" in " ".join(out.split())


def test_tab_completion_of_commands_and_names(repl):
    repl.send(":sam\t")
    repl.expect(":sampler")
    repl.send(" top_\t\t")
    repl.expect("top_k")
    repl.sendcontrol("u")
    repl.sendline("")
    repl.expect(PROMPT)


def test_ctrl_c_stops_training_and_keeps_the_model(repl, tmp_path):
    text = shakespeare_head() * 5
    corpus = tmp_path / "big.txt"
    corpus.write_text(text, encoding="utf-8")
    send(repl, f":corpus textfile path={corpus}")
    repl.timeout = 120
    repl.sendline(":train cell=rnn layers=1 hidden=32 embedding=8 batch=8 seq=50 epochs=50")
    time.sleep(3)
    repl.sendintr()
    repl.expect(PROMPT)
    said = " ".join(repl.before.split())
    assert "training stopped at step" in said and "the model stays loaded" in said
    advice = said[said.index("training stopped at step"):]   # the samples above are random
    run = advice.split(":resume ", 1)[1].split()[0]
    assert "--" not in advice                  # REPL advice, not command-line flags
    step = int(said.split("stopped at step ", 1)[1].split(",")[0])
    repl.sendline(f":resume {run} max_steps={step + 5}")
    repl.expect(PROMPT)
    said = " ".join(repl.before.split())
    assert f"reached its budget (max_steps or max_seconds) at step {step + 5}" in said, said
    out = send(repl, ":info")
    assert "rnn_0 (SimpleRNN)" in out or "rnn_0" in out
    out = send(repl, "First")
    assert len(out.split("First", 1)[1].strip()) > 10


# ---------------------------------------------------------------- the REPL as a workspace
def _api_text(prime, length, seed, **params):
    from charforge import generate
    from charforge.checkpoints.pretrained import load
    model, _ = load("shakespeare")
    return generate(model, prime, length, "temperature", seed, **params)


def _log_entries(tmp_path):
    from charforge.core.jsonl import read_jsonl
    logs = list(tmp_path.rglob("generations.jsonl"))
    assert len(logs) == 1
    return read_jsonl(logs[0])[0]


def test_continuation_is_on_the_prime_line_and_equals_the_api(repl, tmp_path):
    send(repl, ":seed 11")
    out = send(repl, ":length 80")
    assert "length 80" in out and "seed 11" in out              # settings confirmed
    out = send(repl, "ROMEO:")
    expected = _api_text("ROMEO:", 80, 11, temperature=0.8)
    shown = out.replace("\r\n", "\n").split("\n", 1)[1]         # after the echoed line
    assert shown.startswith("ROMEO:" + expected.split("\n", 1)[0])
    assert ("ROMEO:" + expected) in shown

    out = send(repl, "")                                        # Enter alone: more
    more = _api_text("ROMEO:" + expected, 80, 11, temperature=0.8)
    assert more.split("\n", 1)[0] in out.replace("\r\n", "\n")
    entries = _log_entries(tmp_path)
    assert [e["seed"] for e in entries] == [11, 11]
    assert entries[1]["continued"] and entries[1]["prime"] == "ROMEO:" + expected
    assert entries[1]["output"] == more

    out = send(repl, ":more")
    assert len(_log_entries(tmp_path)) == 3


def test_multi_line_primes_and_escapes(repl, tmp_path):
    send(repl, ":seed 5")
    send(repl, ":length 40")
    repl.sendline('"""')
    repl.expect("… ")
    repl.sendline("ROMEO:")
    repl.expect("… ")
    repl.sendline('What light?"""')
    repl.expect(PROMPT)
    out = send(repl, "KING:\\nWho")
    entries = _log_entries(tmp_path)
    assert entries[0]["prime"] == "ROMEO:\nWhat light?"
    assert entries[0]["output"] == _api_text("ROMEO:\nWhat light?", 40, 5, temperature=0.8)
    assert entries[1]["prime"] == "KING:\nWho"
    assert "KING:\r\nWho" in out


def test_several_samples_and_temperatures_side_by_side(repl, tmp_path):
    send(repl, ":seed 2")
    send(repl, ":length 30")
    out = send(repl, ":num 3")
    assert "3 samples per prime" in out
    out = send(repl, "ROMEO:")
    assert "[1]" in out and "[2]" in out and "[3]" in out
    send(repl, ":num 1")
    out = send(repl, ":temp 0.2,1.5")
    assert "temperature 0.2,1.5" in out
    out = send(repl, "KING:")
    assert "temperature 0.2" in out and "temperature 1.5" in out
    entries = _log_entries(tmp_path)
    assert [e["row"] for e in entries[:3]] == [0, 1, 2]
    assert [e["params"]["temperature"] for e in entries[3:]] == [0.2, 1.5]
    assert entries[3]["output"] == _api_text("KING:", 30, 2, temperature=0.2)
    assert "Enter continues [1] temperature 0.2; :more N continues sample N (1 to 2)" in \
        " ".join(out.split())
    out = send(repl, ":more 2")                     # says which one it carries on
    assert "continuing [2] temperature 1.5" in out
    out = send(repl, ":sampler sharpened")
    assert "sharpened" in out
    out = send(repl, ":temp 0.5")                  # never a silent switch of sampler
    assert "error: the sharpened sampler has no temperature" in out
    assert "sharpened" in send(repl, ":settings")
    send(repl, ":sampler temperature")
    send(repl, ":temp 1.3")
    out = send(repl, ":sampler temperature")       # a sampler switch keeps the temperature
    assert "temperature 1.3" in out and "0.8" not in out
    out = send(repl, ":sampler top_k k=5")
    assert "top_k k=5 temperature=1.3" in out, out


def test_pick_mode_write_and_log(repl, tmp_path):
    out = send(repl, ":probs ROMEO")
    assert "temperature 0.8" in out and "':'" in out
    repl.sendline(":pick 3 ROMEO")
    repl.expect("pick » ")
    assert "1 ':'" in repl.before                     # the top candidate, with its share
    repl.sendline("1")
    repl.expect("pick » ")
    repl.sendline("Hi")                              # own text goes in as typed
    repl.expect("pick » ")
    repl.sendline(":undo")
    repl.expect("pick » ")
    repl.sendline(":done")
    repl.expect(PROMPT)
    assert "ROMEO:H" in repl.before
    target = tmp_path / "kept.txt"
    out = send(repl, f":write {target}")
    assert target.read_text(encoding="utf-8") == "ROMEO:H\n"
    out = send(repl, f":write {target}")
    assert "exists" in out and target.read_text(encoding="utf-8") == "ROMEO:H\n"
    send(repl, f":write {target} append")
    assert target.read_text(encoding="utf-8") == "ROMEO:H\nROMEO:H\n"
    out = send(repl, ":log 5")
    assert "pick top=3" in " ".join(out.split())
    entry = _log_entries(tmp_path)[-1]
    assert entry["prime"] == "ROMEO" and entry["output"] == ":H"

    import subprocess
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
    shown = subprocess.run([sys.executable, "-m", "charforge", "log", "-n", "1"], env=env,
                           capture_output=True, text=True, check=True).stdout
    assert "pick top=3" in shown and "ROMEO:H" in shown


def test_help_lists_every_command_with_its_syntax(repl):
    out = " ".join(send(repl, ":help").split())
    for usage in (":corpus NAME [key=value ...]", ":train [key=value ...]",
                  ":sampler NAME [key=value ...]", ":pick [N] [TEXT]", ":write FILE [append]",
                  ":log [N] [TEXT]", ":more [N]", ":num N", ":resume RUN [key=value ...]",
                  ":threads [N|auto]"):
        assert usage in out, usage
    out = send(repl, ":threads 1")
    assert "threads: 1 (chosen)" in out
    out = send(repl, ":threads auto")
    assert "(auto)" in out


def test_keys_typed_during_a_generation_are_not_echoed_into_it(repl):
    send(repl, ":length 5000000")
    repl.sendline("ROMEO:")
    time.sleep(1.0)
    repl.send("zqzq")
    with pytest.raises(pexpect.TIMEOUT):      # read the stream for a while: no echo in it
        repl.expect("zqzq", timeout=1.5, searchwindowsize=4096)
    repl.sendintr()
    repl.expect(PROMPT)
    assert "generation stopped" in repl.before


def test_path_completion(repl, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny-one.safetensors").write_bytes(b"")
    repl.send(f":load {tmp_path}/mod\t")
    repl.expect("models/")
    repl.send("ti\t")
    repl.expect("tiny-one.safetensors")
    repl.sendcontrol("u")
    repl.send(f":corpus textfile path={tmp_path}/models/ti\t")   # path= values complete too
    repl.expect("tiny-one.safetensors")
    repl.sendcontrol("u")
    repl.sendline("")
    repl.expect(PROMPT)


def test_piped_input_generates_like_typed_input(tmp_path):
    """stdin a pipe, not a terminal (a script feeding the REPL): the keyboard handling must
    not get in the way."""
    import subprocess
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-m", "charforge", "repl"], env=env,
                          input=":seed 3\n:length 40\nROMEO:\n:quit\n", capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "error" not in done.stderr, done.stderr
    assert "ROMEO:" in done.stdout and len(done.stdout.split("ROMEO:", 1)[1].strip()) >= 20
