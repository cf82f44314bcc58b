"""The batching engine runs rows of different sampler settings in one kernel call (each row
with its own knobs), and each row still gives charforge.generate's text for its seed."""
import threading

import numpy as np
import pytest

import charforge
from charforge.generation.engine import encode_prime, generate
from charforge.generation.samplers import get_sampler, kernel_settings
from charforge.serve.engine import Engine, Row

SETTINGS = [("temperature", {"temperature": 0.5}), ("temperature", {"temperature": 1.3}),
            ("top_k", {"k": 3, "temperature": 0.9}), ("top_p", {"p": 0.7, "temperature": 1.1}),
            ("sharpened", {"alpha": 2.5, "floor": 0.05}), ("argmax", {}),
            ("temperature", {"temperature": 0.8}), ("top_k", {"k": 20, "temperature": 2.0})]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_rows_of_every_setting_share_one_plan_and_keep_their_texts(precision):
    model = charforge.load_pretrained("shakespeare")[0]
    model.precision = precision
    engine = Engine(model)
    try:
        texts = {i: [] for i in range(len(SETTINGS))}
        ended = threading.Event()
        left = [len(SETTINGS)]
        plan_sizes = set()

        def sink_for(i):
            def sink(piece):
                if piece is None:
                    left[0] -= 1
                    if left[0] == 0:
                        ended.set()
                else:
                    texts[i].append(piece)
                    plan_sizes.update(len(g.slots) for g in engine.groups.values())
                    assert len(engine.groups) == 1
            return sink
        rows = []
        for i, (name, params) in enumerate(SETTINGS):
            sampler = get_sampler(name)
            knobs = kernel_settings(sampler, sampler.resolve(params))
            rows.append(Row(encode_prime(model.vocab, "KING:"), 150 + 10 * i, knobs, 40 + i,
                            sink_for(i)))
        engine.submit(rows)
        assert ended.wait(120)
        assert max(plan_sizes) >= len(SETTINGS)              # all rows in one plan
        for i, (name, params) in enumerate(SETTINGS):
            want = generate(model, "KING:", 150 + 10 * i, name, 40 + i, precision=precision,
                            **params)
            assert "".join(texts[i]) == want, (name, params)
    finally:
        engine.close()


def test_a_plan_with_row_knobs_draws_as_plans_with_one_setting_each():
    """The kernel's per-row knobs against one plan per setting, step for step."""
    from charforge.generation.plan import GenerationPlan, allowed_mask
    model = charforge.load_pretrained("shakespeare")[0]
    vocab = model.vocab
    allowed, eos = allowed_mask(vocab), -1
    knobs = [kernel_settings(get_sampler(n), get_sampler(n).resolve(p)) for n, p in SETTINGS]
    B, steps = len(knobs), 64
    rng = np.random.default_rng(0)
    uniforms = rng.random((B, steps))
    start = np.full(B, int(encode_prime(vocab, "A")[0]), np.int32)

    def run(plan, rows):
        n = len(rows)
        out = np.full((n, steps), -1, np.int32)
        plan.run(start[rows].copy(), np.full((n, steps), -1, np.int32),
                 np.ascontiguousarray(uniforms[rows]), np.zeros(n, np.int64),
                 np.full(n, steps, np.int64), np.zeros(n, np.uint8), out)
        return out
    mixed = GenerationPlan(model, B, allowed, eos, None, own_knobs=True)
    for j, k in enumerate(knobs):
        mixed.set_row(j, k)
    together = run(mixed, list(range(B)))
    for j, k in enumerate(knobs):
        alone = run(GenerationPlan(model, 1, allowed, eos, k), [j])
        np.testing.assert_array_equal(together[j], alone[0])
