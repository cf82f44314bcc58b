"""beam and stochastic_beam: beam search finds the likeliest text when it can see them all
and is greedy at width 1; stochastic beam search draws texts from the model's own
distribution over whole texts (chi-square against exact enumeration); <eos> ends a text;
both work from the command line and the REPL."""
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from charforge_samplers.beam import log_probs, search
from scipy import stats

import charforge
from charforge.generation.engine import generate
from charforge.generation.plan import allowed_mask
from charforge.generation.samplers import get_sampler


def tiny_model(chars="abc", eos=False, seed=0):
    model = charforge.CharModel(charforge.Vocabulary(chars, eos=eos), "lstm", 1, 8, 4,
                                dtype="float64", seed=seed)
    model.flat[...] = np.random.default_rng(seed).normal(0, 0.8, model.flat.shape)
    return model


def text_logp(model, prime_ids, text, temperature=1.0):
    """Exact log-probability of a continuation, one full forward pass."""
    ids = np.concatenate([prime_ids, text]).astype(np.int32)
    logits, _ = model.logits(ids[None, :-1])
    lp = log_probs(logits[0, len(prime_ids) - 1:], allowed_mask(model.vocab), temperature)
    return float(sum(lp[i, t] for i, t in enumerate(text)))


def all_texts(model, prime_ids, length, temperature=1.0):
    texts = [list(t) for t in itertools.product(range(len(model.vocab)), repeat=length)]
    return texts, np.array([text_logp(model, prime_ids, t, temperature) for t in texts])


PRIME = np.array([0, 1], np.int32)


def test_registered_as_whole_text_samplers():
    for name in ("beam", "stochastic_beam"):
        s = get_sampler(name)
        assert s.decode is not None and set(s.params) == {"width", "temperature"}


def test_beam_of_width_one_is_greedy():
    model = tiny_model("abcdefgh")
    assert generate(model, "ab", 40, "beam", width=1) == generate(model, "ab", 40, "argmax")


def test_a_beam_wide_enough_finds_the_likeliest_text():
    model = tiny_model()
    texts, logp = all_texts(model, PRIME, 4)
    beam = search(model, PRIME, 4, allowed_mask(model.vocab), None, width=27,
                  temperature=1.0)
    assert beam[0][0] == texts[int(np.argmax(logp))]
    assert beam[0][1] == pytest.approx(logp.max())
    ranked = [texts[i] for i in np.argsort(-logp, kind="stable")[:27]]
    assert [b[0] for b in beam] == ranked                # the 27 best, in order
    narrow = search(model, PRIME, 4, allowed_mask(model.vocab), None, 2, 1.0)
    assert narrow[0][1] <= logp.max() + 1e-12 and len(narrow) == 2


@pytest.mark.parametrize("width, temperature", [(1, 1.0), (3, 0.8)])
def test_stochastic_beam_draws_texts_from_the_model(width, temperature):
    """The best-keyed text of the final beam is an exact sample of whole texts (at width 1
    the returned text is that sample)."""
    model = tiny_model()
    texts, logp = all_texts(model, PRIME, 2, temperature)
    p = np.exp(logp)
    assert p.sum() == pytest.approx(1.0)
    rng = np.random.default_rng(4)
    index = {tuple(t): i for i, t in enumerate(texts)}
    counts = np.zeros(len(texts))
    n = 6000
    for _ in range(n):
        beam = search(model, PRIME, 2, allowed_mask(model.vocab), None, width, temperature, rng)
        assert len({tuple(b[0]) for b in beam}) == len(beam) == width     # distinct texts
        counts[index[tuple(beam[0][0])]] += 1
    assert stats.chisquare(counts, p * n).pvalue > 1e-3


def test_stochastic_beam_at_full_width_returns_the_likeliest():
    model = tiny_model()
    texts, logp = all_texts(model, PRIME, 3)
    best = texts[int(np.argmax(logp))]
    for seed in range(5):
        got = generate(model, "ab", 3, "stochastic_beam", seed=seed, width=27, result=True)
        assert got.tokens[0] == best


def test_eos_ends_a_text_and_the_search():
    model = tiny_model("abc", eos=True, seed=2)
    eos = model.vocab.eos_id
    model.params["out.bias"][eos] += 3.0                 # texts end soon
    for name in ("beam", "stochastic_beam"):
        got = generate(model, ["a", "b"], 30, name, seed=1, width=3, result=True)
        for tokens in got.tokens:
            assert tokens and tokens[-1] == eos and eos not in tokens[:-1]


def test_whole_text_samplers_refuse_per_step_outputs():
    model = tiny_model()
    with pytest.raises(charforge.CharforgeError, match="chooses whole texts"):
        generate(model, "ab", 5, "beam", return_probs=True)


def test_from_the_command_line_and_the_repl(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
    run = [sys.executable, "-m", "charforge", "generate", "--prime", "ROMEO:", "--length",
           "60", "--sampler", "beam", "--width", "4"]
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)
    again = subprocess.run(run, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and first.stdout.startswith("ROMEO:"), first.stderr
    assert first.stdout == again.stdout                    # deterministic
    bad = subprocess.run(run[:-1] + ["0"], env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    repl = subprocess.run([sys.executable, "-m", "charforge", "repl"], env=env,
                          input=":sampler stochastic_beam width=3\n:length 40\n:seed 2\n"
                                "ROMEO:\n:quit\n", capture_output=True, text=True,
                          timeout=300)
    assert repl.returncode == 0 and "error" not in repl.stderr, repl.stderr
    assert "stochastic_beam" in repl.stdout
    assert len(repl.stdout.split("ROMEO:")[-1].strip()) >= 20
