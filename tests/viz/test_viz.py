"""Seeing inside: the colour mapping, the text features, the ranking (a planted unit comes
first), the trace against the kernels, the terminal and HTML views (the page parsed back and
driven in a real browser), and their mistakes."""
import base64
import html.parser
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import charforge
from charforge.checkpoints.store import save_model
from charforge.core.errors import CharforgeError
from charforge.viz import features
from charforge.viz.activations import trace
from charforge.viz.features import Unit, correlations, feature_values, rank_units
from charforge.viz.html import write_html
from charforge.viz.terminal import BLUE, RED, WHITE, colour, scale_of

TEXT = "The Cat and THE DOG ran home. BIG words (in brackets) here.\nKING:\nSay \"yes\" now."
PLANTED = 3          # the unit that is on exactly on upper-case letters


def planted_model(text=TEXT, hidden=8):
    """A one-hot RNN whose unit 3 is tanh(+-4): on upper-case letters, off elsewhere; the
    other units are near zero."""
    vocab = charforge.Vocabulary(sorted(set(text)))
    model = charforge.CharModel(vocab, "rnn", 1, hidden, None, dtype="float64")
    model.flat[...] = np.random.default_rng(0).normal(0, 0.01, model.flat.shape)
    w_ih = model.params["rnn.weight_ih_l0"]
    w_ih[PLANTED, :] = -4.0
    for ch in vocab.tokens:
        if ch.isupper():
            w_ih[PLANTED, vocab.id_of(ch)] = 4.0
    model.params["rnn.weight_hh_l0"][PLANTED, :] = 0.0
    model.params["rnn.bias_l0"][PLANTED] = 0.0
    return model


def test_colours_of_known_values():
    assert colour(0.0, True) == WHITE and colour(1.0, True) == RED and colour(-1.0, True) == BLUE
    assert colour(5.0, True) == RED and colour(-5.0, True) == BLUE          # clipped
    assert colour(0.0, False) == WHITE and colour(1.0, False) == RED
    assert colour(-0.7, False) == WHITE                                     # gates: >= 0
    assert colour(0.5, True) == (228, 128, 144)                             # half way to red
    assert colour(2.0, True, scale=4.0) == colour(0.5, True)
    assert scale_of(np.array([-3.0, 1.5]), "c") == 3.0 and scale_of(np.array([0.2]), "h") == 1.0


def test_features_of_a_known_text():
    text = 'ab "cd" e\nKING:\n(x (y)) Zz'
    assert features.inside_quotes(text)[3:7].tolist() == [1, 1, 1, 1]
    assert features.inside_quotes(text)[:3].tolist() == [0, 0, 0]
    assert features.line_position(text)[9:13].tolist() == [0, 1, 2, 3]
    assert features.speaker_name(text)[10:15].tolist() == [1, 1, 1, 1, 0]
    assert features.inside_brackets(text)[16:24].tolist() == [1, 1, 1, 2, 2, 2, 1, 0]
    assert features.word_position(text)[:3].tolist() == [1, 2, 0]
    assert features.upper_case(text)[-2:].tolist() == [1, 0]
    assert features.matching(r"K\w+")(text)[10:15].tolist() == [1, 1, 1, 1, 0]
    with pytest.raises(CharforgeError, match="not a regular expression"):
        features.matching("(")


def test_a_planted_unit_ranks_first_for_its_feature():
    rng = np.random.default_rng(1)
    feats = feature_values(TEXT * 3)
    T = len(TEXT) * 3
    values = rng.normal(0, 1, (T, 50))
    values[:, 17] = feats["line_position"]                     # exactly the feature
    values[:, 30] = -feats["speaker"] + rng.normal(0, 0.01, T)   # anti-correlated
    r = correlations(values, feats["line_position"])
    assert int(np.argmax(np.abs(r))) == 17 and r[17] == pytest.approx(1.0)

    class Fake:
        layers, hidden = 1, 50
        states = {"h": values[:, None, :]}
    ranked = rank_units(Fake(), ["h"], feats, top=3)
    assert ranked["line_position"][0] == Unit("h", 0, 17, pytest.approx(1.0))
    assert ranked["speaker"][0].unit == 30 and ranked["speaker"][0].r < -0.99


def test_the_planted_model_end_to_end():
    model = planted_model()
    tr = trace(model, TEXT)
    on = tr.neuron("h", 0, PLANTED)
    assert np.all(on[features.upper_case(TEXT) == 1] > 0.99)
    assert np.all(on[features.upper_case(TEXT) == 0] < -0.99)
    ranked = rank_units(tr, ["h"], feature_values(TEXT), top=3)
    assert ranked["upper"][0].unit == PLANTED and ranked["upper"][0].r > 0.99


def test_the_trace_agrees_with_the_kernels():
    model, _ = charforge.load_pretrained("shakespeare")
    text = "ROMEO:\nWhat light through yonder window breaks?\n"
    tr = trace(model, text, ["h", "c", "o"])
    logits, final = model.logits(model.vocab.encode(text)[None, :])
    z = np.exp(logits[0] - logits[0].max(1, keepdims=True))
    np.testing.assert_allclose(tr.probs, z / z.sum(1, keepdims=True), atol=2e-5)
    for layer, (h, c) in enumerate(final):
        np.testing.assert_allclose(tr.states["h"][-1, layer], h[0], atol=2e-5)
        np.testing.assert_allclose(tr.states["c"][-1, layer], c[0], atol=2e-5)
    o = tr.states["o"]
    assert o.min() >= 0 and o.max() <= 1                     # a gate
    np.testing.assert_allclose(tr.states["h"], o * np.tanh(tr.states["c"]), atol=1e-5)


class _Spans(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.spans, self.data, self._in_data, self._text = [], "", False, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "span" and "ch" in a.get("class", ""):
            self.spans.append(a)
            self._text = ""
        if tag == "script" and a.get("id") == "data":
            self._in_data = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_data = False
        if tag == "span" and self._text is not None:
            self.spans[-1]["text"] = self._text
            self._text = None

    def handle_data(self, data):
        if self._in_data:
            self.data += data
        elif self._text is not None:
            self._text += data


def test_the_html_page_carries_the_values(tmp_path):
    model = planted_model()
    tr = trace(model, TEXT)
    ranked = rank_units(tr, ["h"], feature_values(TEXT), top=3)
    unit = Unit("h", 0, PLANTED, 1.0)
    page = write_html(tmp_path / "v.html", tr, ranked, unit, [unit], "planted")
    parsed = _Spans()
    parsed.feed(page.read_text(encoding="utf-8"))
    assert len(parsed.spans) == len(TEXT)
    values = np.array([float(s["data-v"]) for s in parsed.spans])
    np.testing.assert_allclose(values, tr.neuron("h", 0, PLANTED), atol=1e-4)
    for s, v in zip(parsed.spans, values, strict=True):
        assert s["style"] == "background:rgb({},{},{})".format(*colour(v, True))
    assert "".join(s["text"] for s in parsed.spans).replace("↵", "") == TEXT
    data = json.loads(parsed.data)
    q = np.frombuffer(base64.b64decode(data["values"]["h"][0]), np.int8).reshape(len(TEXT), -1)
    step = np.array(data["steps"]["h"][0])
    np.testing.assert_allclose(q * step, tr.values("h", 0), atol=step.max() / 2 + 1e-9)
    assert data["ranking"]["upper"][0]["unit"] == PLANTED
    assert len(data["topIds"]) == len(TEXT) and len(data["topIds"][0]) == 5


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "charforge", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_viz_from_the_command_line(tmp_path):
    path = tmp_path / "planted.safetensors"
    save_model(path, planted_model())
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    done = _cli("viz", str(path), "--text", "text.txt", "--top", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "upper-case" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[1:5] == ["1", "h", "0", str(PLANTED)] and float(cells[5]) > 0.99
    shown = _cli("viz", str(path), "--text", "text.txt", "--neuron", str(PLANTED),
                 "--html", "out.html", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"h layer 0 unit {PLANTED}" in shown.stdout and "KING:" in shown.stdout
    assert (tmp_path / "out.html").stat().st_size > 1000
    for bad, message in ((["--html", "out.html"], "exists; choose another name"),
                         (["--layer", "3"], "the model has layers 0 to 0"),
                         (["--neuron", "99"], "each layer has units 0 to 7"),
                         (["--state", "c"], "a rnn model has h"),
                         (["--feature", "("], "not a regular expression")):
        failed = _cli("viz", str(path), "--text", "text.txt", *bad, cwd=tmp_path)
        assert failed.returncode == 2, (bad, failed.stderr)
        assert len(failed.stderr.strip().splitlines()) == 1 and message in failed.stderr
    none = _cli("viz", str(path), cwd=tmp_path)
    assert none.returncode == 2 and "--text FILE or --prime TEXT" in none.stderr


def test_no_ranking_where_the_text_cannot_support_one(tmp_path):
    """Two characters gave r = +1.000: a ranking needs a minimum length, and a feature that
    barely varies is left out with a line saying so."""
    short = _cli("viz", "shakespeare", "--prime", "KI", "--top", "1", cwd=tmp_path)
    assert short.returncode == 2 and len(short.stderr.strip().splitlines()) == 1
    assert "at least 64 characters" in short.stderr and "--generate" in short.stderr
    flat = np.zeros(200)
    flat[:4] = 1                                          # on at 4 places: too few
    assert not features.varies_enough(flat)
    flat[:5] = 1
    assert features.varies_enough(flat) and not features.varies_enough(flat[:63])
    (tmp_path / "plain.txt").write_text("and so it goes on and on " * 8, encoding="utf-8")
    plain = _cli("viz", "shakespeare", "--text", "plain.txt", "--top", "1", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    note = next(ln for ln in plain.stdout.splitlines() if ln.startswith("not ranked"))
    assert note.endswith("quote, upper, speaker, bracket")
    assert "inside a word" in plain.stdout


def test_viz_in_the_repl(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-m", "charforge", "repl"], env=env,
                          input=":viz\n:seed 1\n:length 120\nROMEO:\n:viz top 2\n:viz c 0 5\n"
                                ":viz 0 999\n:quit\n",
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0
    assert "nothing to show yet" in done.stdout + done.stderr
    assert "characters since the last newline" in done.stdout
    assert "c layer 0 unit 5" in done.stdout
    assert "each layer has units 0 to" in done.stdout + done.stderr
    short = subprocess.run([sys.executable, "-m", "charforge", "repl"], env=env,
                           input=":length 5\nROMEO:\n:viz top\n:quit\n", capture_output=True,
                           text=True, timeout=300)
    assert "ranking units needs at least 64 characters" in short.stdout + short.stderr
    assert "(:length 200)" in short.stdout + short.stderr


def test_the_page_in_a_real_browser(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    model = planted_model()
    tr = trace(model, TEXT)
    ranked = rank_units(tr, ["h"], feature_values(TEXT), top=3)
    page = write_html(tmp_path / "v.html", tr, ranked, Unit("h", 0, 0, 0.0),
                      [Unit("h", 0, PLANTED, 1.0)], "planted")
    browser.get(page.as_uri())
    spans = browser.find_elements(By.CSS_SELECTOR, "#text .ch")
    assert len(spans) == len(TEXT)
    # switching the unit recolours the text with that unit's values
    box = browser.find_element(By.ID, "unit")
    box.clear()
    box.send_keys(str(PLANTED))
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", box)
    shade = browser.execute_script("return arguments[0].style.background", spans[0])
    assert shade.replace(" ", "") == "rgb({},{},{})".format(*colour(
        float(tr.neuron("h", 0, PLANTED)[0]), True))
    # hovering a character shows its value and the five likeliest next characters
    ActionChains(browser).move_to_element(spans[4]).perform()
    tip = browser.find_element(By.ID, "tooltip").text
    assert f"h 0:{PLANTED} = {tr.neuron('h', 0, PLANTED)[4]:.3f}" in tip
    best = tr.chars[int(np.argmax(tr.probs[4]))]
    assert tip.splitlines()[2].split()[0] == best.replace(" ", "\u2423")
    assert tip.count("p=") == 5
    # selecting "BIG" lists the planted unit first: on across it, off around it
    start = TEXT.index("BIG")
    browser.execute_script("""
        const s = document.querySelectorAll('#text .ch'), r = document.createRange();
        r.setStart(s[arguments[0]].firstChild, 0); r.setEnd(s[arguments[1]].firstChild, 1);
        const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);
        document.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));""",
        start, start + 2)
    rows = browser.find_elements(By.CSS_SELECTOR, "#select-results tr[data-unit]")
    assert rows[0].get_attribute("data-unit") == str(PLANTED)
    assert rows[0].text.split()[1:3] == ["100%", "0%"]
    # and the match view finds the other upper-case runs, THE and DOG among them
    browser.find_element(By.ID, "find-matches").click()
    found = [li.get_attribute("data-start")
             for li in browser.find_elements(By.CSS_SELECTOR, "#matches li")]
    assert str(TEXT.index("THE")) in found and str(TEXT.index("DOG")) in found
    assert str(start) not in found
    heat_rows = browser.find_elements(By.CSS_SELECTOR, "#heat-labels div")
    heat_rows[0].click()
    assert browser.find_element(By.ID, "unit").get_attribute("value") == str(PLANTED)
