"""Samplers and the generation engine: distributions (chi-square through the fused kernel),
argmax against the model's own step path, limits, special tokens, batching, seeds, plugins."""
import re

import numpy as np
import pytest
from scipy import stats

import charforge
from charforge.core import plugins
from charforge.core.errors import CharforgeError
from charforge.core.hookspecs import hookimpl
from charforge.generation.engine import generate
from charforge.generation.samplers import Param, Sampler, softmax

CHARS = "abcdefghijkl"


def constant_model(bias, vocab=None, cell="lstm"):
    """A model whose next-character logits are `bias` whatever the input (zero weights)."""
    vocab = vocab or charforge.Vocabulary(CHARS)
    m = charforge.CharModel(vocab, cell, 1, 8, 4)
    m.flat[...] = 0.0
    m.params["out.bias"][...] = bias
    return m


def random_model(cell="lstm", layers=2, dtype="float64", vocab=None, emb=6, seed=0):
    vocab = vocab or charforge.Vocabulary(CHARS)
    m = charforge.CharModel(vocab, cell, layers, 16, emb, dtype=dtype, seed=seed)
    m.flat += np.random.default_rng(seed).normal(0, 0.4, m.flat.shape)
    return m


def counts_of(model, n_rows, length, sampler, seed=0, **params):
    texts = generate(model, ["a"] * n_rows, length, sampler, seed, **params)
    ids = model.vocab.encode("".join(texts))
    return np.bincount(ids, minlength=len(model.vocab)), len(ids)


BIAS = np.random.default_rng(5).normal(0, 1.3, len(CHARS))


@pytest.mark.parametrize("temperature", [0.6, 1.0, 1.5])
def test_temperature_draws_follow_the_softmax(temperature):
    m = constant_model(BIAS)
    counts, n = counts_of(m, 100, 1000, "temperature", 1, temperature=temperature)
    assert n == 100_000
    assert stats.chisquare(counts, softmax(BIAS / temperature) * n).pvalue > 1e-4
    # power: a subtly different temperature is rejected
    assert stats.chisquare(counts, softmax(BIAS / (temperature * 1.07)) * n).pvalue < 1e-4


def test_top_k_top_p_sharpened_distributions():
    m = constant_model(BIAS)
    p = softmax(BIAS)
    order = np.argsort(-p)
    counts, n = counts_of(m, 100, 1000, "top_k", 2, k=4, temperature=1.0)
    q = np.zeros_like(p)
    q[order[:4]] = p[order[:4]]
    assert counts[order[4:]].sum() == 0
    assert stats.chisquare(counts[order[:4]], q[order[:4]] / q.sum() * n).pvalue > 1e-4
    counts, n = counts_of(m, 100, 1000, "top_p", 3, p=0.7, temperature=1.0)
    keep = order[:np.searchsorted(np.cumsum(p[order]), 0.7) + 1]
    assert set(np.flatnonzero(counts)) == set(keep.tolist())
    counts, n = counts_of(m, 100, 1000, "sharpened", 4, alpha=2.5, floor=0.1)
    q = p ** 2.5
    q[q < 0.1 * q.max()] = 0
    keep = np.flatnonzero(q)
    assert set(np.flatnonzero(counts)) == set(keep.tolist())
    assert stats.chisquare(counts[keep], q[keep] / q.sum() * n).pvalue > 1e-4


def step_path_argmax(model, prime, n):
    """Greedy text from the model's own step() (the sequence kernels, T = 1), no engine."""
    state, ids = None, model.vocab.encode(prime)
    for i in ids[:-1]:
        _, state = model.step([i], state)
    cur, out = int(ids[-1]), []
    for _ in range(n):
        logits, state = model.step([cur], state)
        cur = int(np.argmax(logits[0]))
        out.append(cur)
    return model.vocab.decode(out)


def test_argmax_equals_the_models_step_path():
    for cell in ("rnn", "gru", "lstm"):
        m = random_model(cell)
        assert generate(m, "abc", 40, "argmax") == step_path_argmax(m, "abc", 40), cell


def test_limits_of_temperature_top_k_and_sharpening():
    m = random_model("lstm", dtype="float32")
    greedy = generate(m, "ab", 60, "argmax")
    assert generate(m, "ab", 60, "temperature", seed=3, temperature=1e-4) == greedy
    assert generate(m, "ab", 60, "top_k", seed=3, k=1) == greedy
    plain = generate(m, "ab", 60, "temperature", seed=9, temperature=1.0)
    assert generate(m, "ab", 60, "sharpened", seed=9, alpha=1.0, floor=0.0) == plain


def test_same_seed_same_text_and_different_seeds_differ():
    m = random_model("gru", dtype="float32")
    a = generate(m, "ab", 200, seed=11, temperature=1.0)
    assert a == generate(m, "ab", 200, seed=11, temperature=1.0)
    assert a != generate(m, "ab", 200, seed=12, temperature=1.0)


def test_batched_equals_one_by_one():
    m = random_model("lstm", dtype="float32")
    primes = ["abc", "l", "kkkkkk", "ab"]
    batched = generate(m, primes, 80, "top_p", seed=21, p=0.9, temperature=0.9)
    single = [generate(m, p, 80, "top_p", seed=21 + i, p=0.9, temperature=0.9)
              for i, p in enumerate(primes)]
    assert batched == single
    assert all(len(t) == 80 for t in batched)


def test_unknown_and_padding_are_never_generated():
    vocab = charforge.Vocabulary(CHARS, unk=True, pad=True, unknown="map")
    bias = np.zeros(len(vocab))
    bias[vocab.unk_id] = bias[vocab.pad_id] = 8.0            # the model loves them
    m = constant_model(bias, vocab)
    text = "".join(generate(m, ["a"] * 20, 500, "temperature", 0, temperature=1.0))
    assert len(text) == 10_000 and "[UNK]" not in text and "[PAD]" not in text
    assert generate(m, "a", 50, "argmax") and "\x00" not in text


def test_unseen_prime_characters():
    m = random_model()
    with pytest.raises(CharforgeError, match="never saw: 'Z', '!'"):
        generate(m, "abZ!", 5)
    vocab = charforge.Vocabulary(CHARS, unk=True, unknown="map")
    m2 = random_model(vocab=vocab)
    assert len(generate(m2, "abZ", 5, seed=0)) == 5          # mapped to [UNK]


def test_eos_stops_document_models():
    vocab = charforge.Vocabulary(CHARS, pad=True, eos=True)
    bias = np.zeros(len(vocab))
    bias[vocab.eos_id] = 1.5
    m = constant_model(bias, vocab)
    res = generate(m, ["a"] * 50, 400, "temperature", 0, result=True, temperature=1.0)
    lengths = [len(t) for t in res.texts]
    assert max(lengths) < 400 and all(toks[-1] == vocab.eos_id for toks in res.tokens
                                      if len(toks) < 400)
    assert all("<eos>" not in t for t in res.texts)


def test_streaming_callback_and_probabilities():
    m = random_model("gru", dtype="float32", layers=2)
    pieces = []
    res = generate(m, ["abc", "de"], 30, "temperature", seed=1, result=True,
                   callback=lambda i, s: pieces.append((i, s)), chunk=7, return_probs=True,
                   return_hidden=True, temperature=1.0)
    for i in range(2):
        assert "".join(s for j, s in pieces if j == i) == res.texts[i]
    steps = res.probs.shape[1]
    assert res.probs.shape == (2, steps, len(m.vocab)) and steps == 2 + 30
    assert np.allclose(res.probs[0].sum(-1), 1.0, atol=1e-5)
    assert np.allclose(res.probs[1, :31].sum(-1), 1.0, atol=1e-5)   # shorter prime: done
    assert np.all(res.probs[1, 31:] == 0)
    assert res.hidden.shape == (2, steps, 2, 16)
    # step t's distribution is softmax of the model's logits after input t
    inputs = res.inputs[0] + res.tokens[0]
    logits, _ = m.logits(np.asarray(inputs[:10])[None])
    assert np.allclose(res.probs[0, :10], softmax_rows(logits[0]), atol=1e-5)


def softmax_rows(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("sampler,params,match", [
    ("temperature", {"temperature": 0}, "temperature must be a number above 0"),
    ("temperature", {"temperature": -1}, "temperature must be a number above 0"),
    ("top_k", {"k": 0}, "k must be a whole number from 1 to"),
    ("top_k", {"k": 2.5}, "k must be an integer"),
    ("top_p", {"p": 0}, r"p must be a number in \(0, 1\]"),
    ("top_p", {"p": 1.2}, r"p must be a number in \(0, 1\]"),
    ("sharpened", {"alpha": 0}, "alpha must be a number above 0"),
    ("temperature", {"heat": 2}, "no parameter 'heat'"),
    ("nucleus", {}, "unknown sampler"),
])
def test_invalid_sampler_settings(sampler, params, match):
    with pytest.raises(CharforgeError, match=match):
        generate(random_model(), "a", 5, sampler, **params)


class LastAllowed:
    @hookimpl
    def charforge_register_samplers(self, register):
        def last(logits, rng, offset=0):
            allowed = np.flatnonzero(np.isfinite(logits))
            return int(allowed[-1 - int(offset)])
        register(Sampler("last_allowed", "test plugin", last,
                         {"offset": Param(0, int, 0, None)}))


def test_plugin_sampler_end_to_end(capsys):
    plugins.register_plugin(LastAllowed(), "last-allowed")
    try:
        m = random_model()
        assert generate(m, "ab", 10, "last_allowed") == "l" * 10
        assert generate(m, "ab", 10, "last_allowed", offset=1) == "k" * 10
        import os
        import tempfile

        from charforge.checkpoints.store import save_model
        from charforge.cli.main import main
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.safetensors")
            save_model(path, m.astype("float32"))
            assert main(["generate", path, "--prime", "ab", "--length", "5", "--sampler",
                         "last_allowed", "--param", "offset=2"]) == 0
            assert capsys.readouterr().out.strip() == "ab" + "j" * 5
    finally:
        plugins.unregister_plugin("last-allowed")


def test_plugin_sampler_that_raises_is_one_line_error():
    class Broken:
        @hookimpl
        def charforge_register_samplers(self, register):
            register(Sampler("broken", "raises", lambda logits, rng: 1 / 0))
    plugins.register_plugin(Broken(), "broken")
    try:
        with pytest.raises(CharforgeError, match="sampler 'broken' raised ZeroDivisionError"):
            generate(random_model(), "a", 5, "broken")
    finally:
        plugins.unregister_plugin("broken")


def test_whole_text_sampler_is_called_per_prime_and_checked():
    calls = []

    def decode(model, prime_ids, length, rng, allowed, eos, repeat=1):
        calls.append((prime_ids.tolist(), length, int(allowed.sum()), eos))
        return [int(prime_ids[-1])] * min(length, repeat)

    def bad(model, prime_ids, length, rng, allowed, eos):
        return [len(allowed)]                       # not a character's id

    class Whole:
        @hookimpl
        def charforge_register_samplers(self, register):
            register(Sampler("echo_last", "repeats the prime's last character", lambda z, r,
                             repeat=1: 0, {"repeat": Param(1, int, 0, None)}, decode=decode))
            register(Sampler("bad_whole", "returns a bad id", lambda z, r: 0, decode=bad))
    plugins.register_plugin(Whole(), "whole")
    try:
        m = random_model()
        pieces = []
        texts = generate(m, ["ab", "k"], 5, "echo_last", repeat=3,
                         callback=lambda b, piece: pieces.append((b, piece)))
        assert texts == ["bbb", "kkk"] and pieces == [(0, "bbb"), (1, "kkk")]
        assert [c[0] for c in calls] == [m.vocab.encode("ab").tolist(),
                                         m.vocab.encode("k").tolist()]
        assert calls[0][1:] == (5, len(m.vocab), None)
        with pytest.raises(CharforgeError, match="sampler 'bad_whole' returned"):
            generate(m, "a", 5, "bad_whole")
        with pytest.raises(CharforgeError, match="chooses whole texts"):
            generate(m, "a", 5, "echo_last", return_hidden=True)
    finally:
        plugins.unregister_plugin("whole")


def test_threaded_generation_matches_the_step_path():
    """Models big enough for the threaded kernel (units split over threads, a barrier per
    layer) generate exactly what the single-threaded step path does."""
    from charforge.generation.plan import GenerationPlan
    charforge.set_num_threads(2)
    for cell in ("lstm", "gru", "rnn"):
        vocab = charforge.Vocabulary(CHARS)
        m = charforge.CharModel(vocab, cell, 2, 256 if cell == "rnn" else 160, 8,
                                dtype="float64", seed=1)
        m.flat += np.random.default_rng(1).normal(0, 0.05, m.flat.shape)
        assert GenerationPlan.for_model(m, 2).threads == 2
        got = generate(m, ["abc", "k"], 25, "argmax")
        for prime, text in zip(["abc", "k"], got, strict=True):
            assert text == step_path_argmax(m, prime, 25), cell
        batched = generate(m, ["abc", "k", "ee"], 40, "temperature", seed=5, temperature=1.0)
        single = [generate(m, p, 40, "temperature", seed=5 + i, temperature=1.0)
                  for i, p in enumerate(["abc", "k", "ee"])]
        assert batched == single


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_threads_taking_rows_of_a_batch_match_one_by_one(cell, dtype):
    """From SPLIT_ROWS_FROM rows on, each thread runs its own rows as an independent loop
    (9 rows over 2 threads: 4 and 5); texts and per-step probabilities equal one-by-one
    generation, rows that stop early (EOS-free, different prime lengths) included."""
    from charforge.generation.plan import SPLIT_ROWS_FROM, GenerationPlan
    charforge.set_num_threads(2)
    m = random_model(cell, dtype=dtype, seed=3)
    primes = ["abc", "k", "ee", "lkj", "a", "bb", "c", "kl", "e"]
    plan = GenerationPlan.for_model(m, len(primes), nthreads=2)
    assert len(primes) >= SPLIT_ROWS_FROM and plan.split_rows
    batch = generate(m, primes, 30, "temperature", seed=7, temperature=0.9, result=True,
                     return_probs=True)
    for i, prime in enumerate(primes):
        one = generate(m, prime, 30, "temperature", seed=7 + i, temperature=0.9, result=True,
                       return_probs=True)
        assert batch.texts[i] == one.texts[0]
        steps = one.probs.shape[1]
        np.testing.assert_allclose(batch.probs[i, :steps], one.probs[0], atol=2e-6)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cell,hidden", [("lstm", 262), ("gru", 302), ("rnn", 514)])
def test_batch_one_reads_rows_in_either_order_with_identical_results(cell, hidden, threads):
    """At batch 1 every other step reads the weight rows last-first (so the rows still in L2
    come first) and two threads split the dense layer (widths chosen so a thread's share is
    not a multiple of the matvec's 4-row groups): the per-step probabilities must equal, bit
    for bit, those of one-step calls (chunk=1: every step reads forwards)."""
    from charforge.generation.plan import GenerationPlan
    before = charforge.get_num_threads()
    charforge.set_num_threads(threads)
    try:
        m = charforge.CharModel(charforge.Vocabulary(CHARS), cell, 1, hidden, 8, seed=4)
        m.flat += np.random.default_rng(4).normal(0, 0.05, m.flat.shape).astype(np.float32)
        assert GenerationPlan.for_model(m, 1, nthreads=threads).threads == threads
        runs = [generate(m, "abc", 40, "temperature", seed=3, result=True, return_probs=True,
                         callback=lambda i, s: None, chunk=chunk, temperature=1.0)
                for chunk in (1, 40)]
        assert runs[0].texts == runs[1].texts
        np.testing.assert_array_equal(runs[0].probs, runs[1].probs)
    finally:
        charforge.set_num_threads(before)


@pytest.mark.parametrize("sampler,params", [("temperature", {"temperature": 1.1}),
                                            ("top_p", {"p": 0.7})])
def test_streaming_chunks_give_the_same_text(sampler, params):
    """Uniform draws are made a chunk at a time: any chunking (4 per call when streaming,
    256 otherwise) consumes each row's stream the same way."""
    import charforge
    model, _ = charforge.load_pretrained("shakespeare")
    primes = ["ROMEO:", "", "A much longer prime that is still being fed", "Q"]
    whole = charforge.generate(model, primes, 1500, sampler, seed=5, **params)
    pieces = [[] for _ in primes]
    streamed = charforge.generate(model, primes, 1500, sampler, seed=5,
                                  callback=lambda r, p: pieces[r].append(p), **params)
    assert streamed == whole == ["".join(p) for p in pieces]
    assert all(len(t) == 1500 for t in whole)


def test_a_callback_that_cannot_take_index_and_piece_is_refused_up_front():
    from charforge.checkpoints.pretrained import load
    model, _ = load("shakespeare")
    got = []
    for bad, words in ((got.append, "must accept two arguments, callback(index, piece)"),
                       (lambda piece: None, "must accept two arguments"),
                       (5, "must be a function")):
        with pytest.raises(CharforgeError, match=re.escape(words)):
            generate(model, "ROMEO:", 20, seed=1, callback=bad)
    assert got == []
    pieces = []
    text = generate(model, "ROMEO:", 40, seed=1, callback=lambda i, piece: pieces.append(piece))
    assert "".join(pieces) == text

    rows = []

    def with_defaults(index, piece, *, extra=None):
        rows.append(index)
    generate(model, ["a", "b"], 5, seed=1, callback=with_defaults)
    assert set(rows) == {0, 1}
