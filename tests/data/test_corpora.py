"""Built-in corpora: against the full files in CHARFORGE_DATA_DIR (marked `corpora`), and on
small fixtures and synthetic files."""
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import AG_NEWS_SAMPLE

from charforge.core.errors import CharforgeError
from charforge.data.batching import load_corpus
from charforge.data.corpora import download


@pytest.mark.corpora
def test_shakespeare_real_counts():
    data = load_corpus("shakespeare")
    assert data.kind == "text"
    assert len(data.ids) == 1_115_394
    assert len(data.vocab) == 65
    assert data.ids.dtype == np.uint8
    text = Path(os.environ["CHARFORGE_DATA_DIR"], "tinyshakespeare.txt").read_text("utf-8")
    assert data.vocab.decode(data.ids[:200]) == text[:200]
    assert data.vocab.decode(data.ids[-200:]) == text[-200:]


@pytest.mark.corpora
def test_id_cache_is_memory_mapped_and_reused():
    first = load_corpus("shakespeare")
    assert isinstance(first.ids, np.memmap) or isinstance(first.ids.base, np.memmap)
    cached = list((Path(os.environ["CHARFORGE_CACHE_DIR"]) / "ids").glob("*.npy"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    second = load_corpus("shakespeare")
    assert cached[0].stat().st_mtime_ns == mtime            # not re-encoded
    assert np.array_equal(first.ids[:1000], second.ids[:1000])


@pytest.mark.corpora
def test_ag_news_test_split_titles_end_with_eos():
    data = load_corpus("ag_news", {"split": "test"})
    assert data.kind == "documents" and len(data.docs) == 7_600
    eos, pad = data.vocab.eos_id, data.vocab.pad_id
    assert eos is not None and pad is not None
    for i in (0, 1, 7_599):
        d = data.docs.doc(i)
        assert d[0] == eos and d[-1] == eos and eos not in d[1:-1]
    first = data.vocab.decode(data.docs.doc(0))
    assert first.startswith("Fears for T N pension")         # the first test row's title


def test_ag_news_layout_from_a_local_file():
    data = load_corpus("ag_news", {"path": str(AG_NEWS_SAMPLE)})
    both = load_corpus("ag_news", {"path": str(AG_NEWS_SAMPLE), "field": "both"})
    assert data.kind == "documents" and len(data.docs) == 800 == len(both.docs)
    eos = data.vocab.eos_id
    d = data.docs.doc(0)
    assert d[0] == eos and d[-1] == eos and eos not in d[1:-1]
    assert data.vocab.decode(d) == "Football club agree on new rules after talks"
    assert "\\" not in both.vocab.decode(both.docs.doc(0))     # backslashes read as spaces
    assert both.docs.lengths().sum() > 3 * data.docs.lengths().sum()


@pytest.mark.corpora
def test_ag_news_fields():
    both = load_corpus("ag_news", {"split": "test", "field": "both"})
    titles = load_corpus("ag_news", {"split": "test"})
    assert len(both.docs) == 7_600
    assert both.docs.lengths().sum() > 3 * titles.docs.lengths().sum()
    with pytest.raises(CharforgeError, match="field must be one of"):
        load_corpus("ag_news", {"split": "test", "field": "body"})


def test_harry_potter_from_a_users_file(tmp_path, monkeypatch):
    book = ("CHAPTER ONE - THE RIDDLE HOUSE\r\n\r\n\tThe villagers of Little Hangleton "
            "still called it \u201cthe Riddle House.\u201d\r\n") * 50
    path = tmp_path / "goblet_book.txt"
    path.write_bytes(book.encode("utf-8"))
    data = load_corpus("harry_potter", {"path": str(path)})
    text = data.vocab.decode(data.ids)
    assert "\r" not in text and text == book.replace("\r\n", "\n")
    assert "\u201c" in data.vocab.chars                      # Unicode quotes kept
    monkeypatch.setenv("CHARFORGE_HARRY_POTTER", str(path))
    assert len(load_corpus("harry_potter").ids) == len(text)


def test_harry_potter_missing_says_what_to_provide(monkeypatch, tmp_path):
    monkeypatch.delenv("CHARFORGE_HARRY_POTTER", raising=False)
    with pytest.raises(CharforgeError, match="own plain-text copy.*CHARFORGE_HARRY_POTTER"):
        load_corpus("harry_potter")
    with pytest.raises(CharforgeError, match="does not exist"):
        load_corpus("harry_potter", {"path": str(tmp_path / "nope.txt")})


def test_textfile_file_and_folder(tmp_path):
    (tmp_path / "a.txt").write_text("héllo wörld\n" * 10, encoding="utf-8")
    (tmp_path / "b.txt").write_text("ünïcode ✓\n" * 10, encoding="utf-8")
    one = load_corpus("textfile", {"path": str(tmp_path / "a.txt")})
    assert one.vocab.decode(one.ids) == "héllo wörld\n" * 10
    both = load_corpus("textfile", {"path": str(tmp_path)})
    assert both.vocab.decode(both.ids) == "héllo wörld\n" * 10 + "ünïcode ✓\n" * 10
    assert "✓" in both.vocab.chars


def test_textfile_errors(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 ".encode("latin-1") * 10)
    with pytest.raises(CharforgeError, match="not valid UTF-8"):
        load_corpus("textfile", {"path": str(bad)})
    with pytest.raises(CharforgeError, match="needs a file"):
        load_corpus("textfile")
    with pytest.raises(CharforgeError, match="has no option 'file'"):
        load_corpus("textfile", {"file": "x"})
    with pytest.raises(CharforgeError, match="unknown corpus"):
        load_corpus("shakespear")


def test_download_without_network_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARFORGE_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("CHARFORGE_OFFLINE")
    # Port 9 on localhost refuses the connection: no traffic leaves the machine.
    with pytest.raises(CharforgeError) as err:
        download.fetch(("thing.txt",), "http://127.0.0.1:9/thing.txt", None)
    msg = str(err.value)
    assert "could not download" in msg and "thing.txt" in msg and "CHARFORGE_DATA_DIR" in msg
    assert not list(Path(os.environ["CHARFORGE_CACHE_DIR"]).glob(".download-*"))


def test_checksum_mismatch_is_reported(tmp_path, monkeypatch):
    (tmp_path / "tinyshakespeare.txt").write_text("not the real thing")
    monkeypatch.setenv("CHARFORGE_DATA_DIR", str(tmp_path))
    with pytest.raises(CharforgeError, match="sha256"):
        load_corpus("shakespeare")


def test_offline_switch_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARFORGE_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(CharforgeError, match="CHARFORGE_OFFLINE forbids downloading it"):
        download.fetch(("thing.txt",), "http://127.0.0.1:9/thing.txt", None)


def test_local_file_checksum_helper():
    p = AG_NEWS_SAMPLE
    assert download.sha256_of(p) == hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_streaming_decoder_across_chunk_boundaries(tmp_path, monkeypatch, chunk):
    """Multi-byte characters and CRLF pairs cut by chunk boundaries decode exactly as
    Python's universal-newline UTF-8 reader does."""
    from charforge.data import idcache
    text = "a\r\nb\rc\n\r\n€😀é\r\r\nx" * 7 + "\ufeffend"
    path = tmp_path / "t.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    monkeypatch.setattr(idcache, "CHUNK_BYTES", chunk)
    data = load_corpus("textfile", {"path": str(path)})
    expected = path.read_text(encoding="utf-8-sig")        # universal newlines
    assert data.vocab.decode(data.ids) == expected


def test_invalid_utf8_reports_the_byte_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"hello world " * 10 + b"\xed\xa0\x80 surrogate")
    with pytest.raises(CharforgeError, match=r"not valid UTF-8 \(byte 120\)"):
        load_corpus("textfile", {"path": str(path)})
    path.write_bytes(b"cut short \xe2\x82")
    with pytest.raises(CharforgeError, match="not valid UTF-8"):
        load_corpus("textfile", {"path": str(path)})


def test_a_folder_is_walked_once_per_load(tmp_path, monkeypatch):
    """load_corpus asks the textfile corpus for its text and its identity: one walk of the
    folder (and one sniff of each file) serves both; the next load walks again."""
    from charforge.data.corpora.textfile import TextFile
    (tmp_path / "a.txt").write_text("hello there\n" * 50, encoding="utf-8")
    walks = []
    real = TextFile._found
    monkeypatch.setattr(TextFile, "_found", lambda self, *a: walks.append(a) or real(self, *a))
    load_corpus("textfile", {"path": str(tmp_path)})
    assert len(walks) == 1
    (tmp_path / "b.txt").write_text("and more\n" * 50, encoding="utf-8")
    assert len(load_corpus("textfile", {"path": str(tmp_path)}).ids) > 600   # b.txt seen
    assert len(walks) == 2


def test_only_a_many_valued_option_takes_several_values():
    from charforge.data.corpora import get_corpus
    with pytest.raises(CharforgeError, match="glob takes one value, got 2: x, y"):
        get_corpus("textfile").resolve_options({"path": ["a", "b"], "glob": ["x", "y"]})
    with pytest.raises(CharforgeError, match="path takes one value, got 2"):
        get_corpus("harry_potter").resolve_options({"path": ["a", "b"]})
    assert get_corpus("textfile").resolve_options({"path": ["a", "b"]})["path"] == ["a", "b"]
