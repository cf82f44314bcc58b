"""Small things people expect with their own text: `generate --prime-file`, and `train`
without `--out` making a dated run folder in the data folder (printed), as the REPL does."""
import os
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tinyshakespeare_head.txt"


def cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "charforge", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600, env=env)


def test_a_prime_from_a_file(tmp_path):
    prime = tmp_path / "start.txt"
    prime.write_text("KING HENRY:\nOnce more unto the breach,", encoding="utf-8")
    done = cli("generate", "--prime-file", str(prime), "--length", "30", "--seed", "3",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    same = cli("generate", "--prime", prime.read_text(encoding="utf-8"), "--length", "30",
               "--seed", "3", cwd=tmp_path)
    assert done.stdout == same.stdout and done.stdout.startswith("KING HENRY:")
    for args, words in ((["--prime-file", "missing.txt"], "does not exist"),
                        (["--prime-file", str(tmp_path)], "folder")):
        bad = cli("generate", *args, cwd=tmp_path)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, args
        assert words in bad.stderr, (args, bad.stderr)


def test_train_without_out_makes_a_dated_run_folder(tmp_path):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"))
    done = cli("train", "--corpus", "textfile", "--path", str(FIXTURE), "--hidden", "8",
               "--layers", "1", "--max-steps", "2", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stderr.splitlines() if "the run folder is" in ln)
    folder = Path(line.split("the run folder is ", 1)[1])
    assert folder.parent == tmp_path / "data" / "charforge" / "runs"
    assert any(folder.glob("step-*.safetensors"))
