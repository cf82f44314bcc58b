"""Batching modes: exact inputs/targets, masks, state carry, determinism, splits, errors."""
import numpy as np
import pytest

import charforge
from charforge.core.errors import CharforgeError
from charforge.data.batching import (
    CorpusData,
    DocumentBatches,
    Documents,
    StreamBatches,
    WindowBatches,
    evaluation_batches,
)
from charforge.data.vocab import Vocabulary
from charforge.training.evaluation import evaluate


def text_data(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 20, n).astype(np.uint8)
    return CorpusData("synthetic", "text", Vocabulary("abcdefghijklmnopqrst"), ids=ids)


def doc_data(lengths, seed=0):
    vocab = Vocabulary("abcde", pad=True, eos=True)
    rng = np.random.default_rng(seed)
    parts, offsets = [], [0]
    for n in lengths:
        d = np.concatenate(([vocab.eos_id], rng.integers(2, 7, n), [vocab.eos_id]))
        parts.append(d)
        offsets.append(offsets[-1] + len(d))
    return CorpusData("docs", "documents", vocab,
                      docs=Documents(np.concatenate(parts).astype(np.int32),
                                     np.asarray(offsets)))


def test_windows_are_shifted_corpus_slices_without_overlap():
    data = text_data()
    b = WindowBatches(data, batch=4, seq=10, seed=3)
    seen = []
    for batch in b.epoch(0):
        assert batch.x.shape == (4, 10) and batch.mask is None and not batch.carry
        for x, y in zip(batch.x, batch.y, strict=True):
            assert np.array_equal(x[1:], y[:-1])
            window = np.concatenate((x, y[-1:])).astype(np.uint8).tobytes()
            start = data.ids.tobytes().find(window)
            assert start >= 0
            seen.append(start)
    starts = seen
    assert len(set(starts)) == len(starts)
    assert len(starts) == len(b) * 4


def test_windows_order_is_a_function_of_seed_and_epoch():
    data = text_data()
    b = WindowBatches(data, batch=4, seq=10, seed=3)
    e0 = [x.x.copy() for x in b.epoch(0)]
    again = [x.x.copy() for x in b.epoch(0)]
    e1 = [x.x.copy() for x in b.epoch(1)]
    assert all(np.array_equal(a, c) for a, c in zip(e0, again, strict=True))
    assert not all(np.array_equal(a, c) for a, c in zip(e0, e1, strict=False))
    resumed = [x.x.copy() for x in b.epoch(0, start=5)]
    assert all(np.array_equal(a, c) for a, c in zip(e0[5:], resumed, strict=True))


def test_streams_walk_contiguous_streams_and_carry_state():
    data = text_data(1001)
    b = StreamBatches(data, batch=4, seq=25)
    L = 1000 // 4
    batches = list(b.epoch(0))
    assert len(batches) == L // 25
    for i, batch in enumerate(batches):
        assert batch.carry == (i > 0)
        for r in range(4):
            start = r * L + i * 25
            assert np.array_equal(batch.x[r], data.ids[start:start + 25])
            assert np.array_equal(batch.y[r], data.ids[start + 1:start + 26])


def test_documents_padded_masked_and_ending_in_eos():
    data = doc_data([3, 10, 5, 1, 7, 2, 9, 4])
    b = DocumentBatches(data, batch=2, seq=50, seed=1)
    eos, pad = data.vocab.eos_id, data.vocab.pad_id
    got = []
    for batch in b.epoch(0):
        for x, y, m in zip(batch.x, batch.y, batch.mask, strict=True):
            n = int(m.sum())
            assert np.all(m[:n] == 1) and np.all(m[n:] == 0)
            assert x[0] == eos and y[n - 1] == eos
            assert np.all(x[n:] == pad) and np.all(y[n:] == pad)
            assert np.array_equal(x[1:n], y[:n - 1])
            got.append(n - 1)
    assert sorted(got) == sorted([3, 10, 5, 1, 7, 2, 9, 4])


def test_documents_longer_than_seq_are_cut():
    data = doc_data([23])
    b = DocumentBatches(data, batch=1, seq=10, seed=0)
    pieces = list(b.epoch(0))
    assert sorted(int(p.mask.sum()) for p in pieces) == [4, 10, 10]


def test_masked_positions_add_no_loss_or_gradient():
    data = doc_data([3, 12])
    batch = next(DocumentBatches(data, batch=2, seq=50, seed=0).epoch(0))
    model = charforge.CharModel(data.vocab, "lstm", 1, 8, 4, dtype="float64")
    loss, grads, _ = model.loss_and_grads(batch.x, batch.y, batch.mask)
    x2, y2 = batch.x.copy(), batch.y.copy()
    x2[batch.mask == 0] = 1                               # garbage under the mask
    y2[batch.mask == 0] = 2
    loss2, grads2, _ = model.loss_and_grads(x2, y2, batch.mask)
    assert loss == pytest.approx(loss2, abs=1e-12)
    for k in grads:
        assert np.allclose(grads[k], grads2[k], atol=1e-12)


def test_split_fractions_are_contiguous():
    data = text_data(1000)
    parts = data.split((0.8, 0.15, 0.05))
    assert [len(parts[k].ids) for k in ("train", "val", "test")] == [800, 150, 50]
    assert np.array_equal(np.concatenate([parts[k].ids for k in ("train", "val", "test")]),
                          data.ids)
    with pytest.raises(CharforgeError, match="adding up to 1"):
        data.split((0.8, 0.3, 0.0))


def test_split_too_small_for_a_batch_is_a_clear_error():
    small = text_data(300)
    with pytest.raises(CharforgeError, match="fewer than one batch.*lower batch=N or seq=N"):
        WindowBatches(small, batch=64, seq=100, split_name="train")
    with pytest.raises(CharforgeError, match="fewer than one batch"):
        StreamBatches(small, batch=8, seq=100)
    with pytest.raises(CharforgeError, match="documents"):
        DocumentBatches(doc_data([3, 4]), batch=5, seq=10)


def test_evaluation_covers_the_split_once():
    data = text_data(1001)
    covered = sum(b.x.size for b in evaluation_batches(data, 4, 60))
    assert covered == 1000
    model = charforge.CharModel(data.vocab, "gru", 1, 8, 4, dtype="float64")
    loss = evaluate(model, data, 4, 60)
    # the same number from one long pass over each stream
    x = data.ids[:1000].reshape(4, 250)
    y = data.ids[1:1001].reshape(4, 250)
    ref, _ = model.loss(x, y)
    assert loss == pytest.approx(ref, rel=1e-12)
