"""Number words and the transcript generators of the speech recipe (pure Python, no audio)."""
import collections
import random

import pytest

from examples.speech_recognition import number_words as nw
from examples.speech_recognition import texts


@pytest.mark.parametrize("n, british, american", [
    (0, "zero", "zero"), (7, "seven", "seven"), (10, "ten", "ten"), (13, "thirteen", "thirteen"),
    (20, "twenty", "twenty"), (21, "twenty one", "twenty one"), (100, "one hundred", "one hundred"),
    (105, "one hundred and five", "one hundred five"),
    (999, "nine hundred and ninety nine", "nine hundred ninety nine"),
    (1000, "one thousand", "one thousand"), (1005, "one thousand and five", "one thousand five"),
    (1250, "one thousand two hundred and fifty", "one thousand two hundred fifty"),
    (40_017, "forty thousand and seventeen", "forty thousand seventeen"),
    (999_999, "nine hundred and ninety nine thousand nine hundred and ninety nine",
     "nine hundred ninety nine thousand nine hundred ninety nine"),
    (1_000_000, "one million", "one million")])
def test_cardinal(n, british, american):
    assert nw.cardinal(n) == british
    assert nw.cardinal(n, and_=False) == american


def test_cardinal_variants_and_range():
    assert nw.cardinal_variants(1250) == [
        "one thousand two hundred and fifty", "one thousand two hundred fifty",
        "twelve hundred and fifty", "twelve hundred fifty"]
    assert nw.cardinal_variants(1900) == ["one thousand nine hundred", "nineteen hundred"]
    assert nw.cardinal_variants(2005) == ["two thousand and five", "two thousand five"]
    assert nw.cardinal_variants(7) == ["seven"]
    for bad in (-1, 1_000_001, 2.0):
        with pytest.raises(ValueError, match="not an integer in 0..1,000,000"):
            nw.cardinal(bad)


@pytest.mark.parametrize("y, words", [
    (1984, "nineteen eighty four"), (1905, "nineteen oh five"), (1900, "nineteen hundred"),
    (2000, "two thousand"), (2005, "two thousand and five"), (2010, "twenty ten"),
    (2026, "twenty twenty six"), (1066, "ten sixty six"), (2100, "twenty one hundred")])
def test_year(y, words):
    assert nw.year(y) == words
    with pytest.raises(ValueError, match="1000..2999"):
        nw.year(3000)


def test_digits_and_ordinals():
    assert nw.digit_words("305") == "three zero five"
    assert nw.digit_words("305", oh=True) == "three oh five"
    with pytest.raises(ValueError, match="string of digits"):
        nw.digit_words("3a")
    assert [nw.ordinal(n) for n in (1, 2, 3, 12, 20, 21, 30, 31)] == [
        "first", "second", "third", "twelfth", "twentieth", "twenty first", "thirtieth",
        "thirty first"]


def test_generators_cover_the_forms_people_say():
    rng = random.Random(0)
    drawn = {k: [texts.GENERATORS[k](rng) for _ in range(3000)] for k in texts.KINDS}
    assert set(drawn["digit"]) == set(nw.ONES[:10]) | {"oh"}
    lengths = collections.Counter(len(t.split()) for t in drawn["digits"])
    assert set(lengths) == set(range(1, 11))
    assert any("oh" in t.split() for t in drawn["digits"])
    assert any("zero" in t.split() for t in drawn["digits"])
    numbers = set(drawn["number"])
    assert "one million" in numbers and "zero" in numbers
    assert any(" hundred and " in t for t in numbers) and any(t.startswith("twenty ") and
                                                              len(t.split()) == 2 for t in numbers)
    assert any(t.startswith("nineteen ") or t.startswith("twenty twenty") for t in numbers)
    # number words alone, "hundred", "thousand" and "million" too, in about 15% of the draws
    alone = [t for t in drawn["number"] if t in texts.NUMBER_WORDS]
    assert {"ten", "nineteen", "ninety", "hundred", "thousand", "million"} <= set(alone)
    assert len(alone) / len(drawn["number"]) == pytest.approx(0.15, abs=0.03)
    times = set(drawn["time"])
    for form in ("half past ", "quarter to ", " to ", " o'clock"):
        assert any(form in t for t in times), form
    dates = set(drawn["date"])
    assert any(t.startswith("the ") and " of " in t for t in dates)
    assert any(t.split()[0] in texts.MONTHS and t.split()[1] != "the" for t in dates)
    assert any(t.startswith("set a timer for ") for t in drawn["command"])
    for kind, items in drawn.items():
        for t in items:
            assert t == " ".join(t.split()) and t == t.lower() and "-" not in t, (kind, t)


def test_minimal_pairs_side_by_side_in_longer_numbers():
    """About 10% of number texts put a teen next to the ty of the same digit, both orders, all
    seven pairs (thirteen/thirty .. nineteen/ninety), read in pairs as years are."""
    assert nw.in_pairs(1330) == "thirteen thirty" and nw.in_pairs(4014) == "forty fourteen"
    assert nw.in_pairs(1662) == "sixteen sixty two" and nw.in_pairs(9019) == "ninety nineteen"
    assert nw.in_pairs(3005) == "three thousand and five" and nw.in_pairs(7100) == \
        "seventy one hundred"
    with pytest.raises(ValueError, match="1000..9999"):
        nw.in_pairs(999)
    numbers = [texts.number_text(random.Random(i)) for i in range(4000)]
    pairs = collections.Counter()
    for t in numbers:
        words = t.split()
        for a, b in zip(words, words[1:]):
            for d in range(3, 10):
                if {a, b} == {nw.ONES[10 + d], nw.TENS[d]}:
                    pairs[(d, a == nw.TENS[d])] += 1
    assert set(pairs) == {(d, ty_first) for d in range(3, 10) for ty_first in (False, True)}
    with_pair = sum(pairs.values()) / len(numbers)
    assert with_pair == pytest.approx(texts.PAIR_SHARE, abs=0.03)  # years add a few (1990s)


def test_held_out_texts_are_disjoint_from_train():
    rng = random.Random(1)
    for kind in texts.KINDS:
        drawn = {s: texts.draw(kind, 300, rng, s) for s in texts.SPLITS}
        multi = {s: {t for t in d if " " in t} for s, d in drawn.items()}
        assert not multi["train"] & multi["test"] and not multi["train"] & multi["dev"]
        assert not multi["dev"] & multi["test"]
        if kind != "digit":
            assert multi["test"] and multi["dev"], kind
    # one-word texts are in every split, in the generator's proportion
    test_numbers = texts.draw("number", 2000, random.Random(2), "test")
    train_numbers = texts.draw("number", 2000, random.Random(2), "train")
    one_word = [sum(" " not in t for t in d) / 2000 for d in (test_numbers, train_numbers)]
    assert one_word[0] == pytest.approx(one_word[1], abs=0.05)
    assert set(texts.draw("digit", 50, random.Random(3), "test")) <= set(nw.ONES[:10]) | {"oh"}
    with pytest.raises(ValueError, match="unknown text kind 'word'"):
        texts.draw("word", 1, rng, "train")


def test_held_out_characters_must_occur_in_training():
    from examples.speech_recognition import prepare_speech

    utt = lambda text: prepare_speech.Utterance(text, "v", text, "command")  # noqa: E731
    assert prepare_speech.uncovered_characters([utt("call mom")], [utt("call")]) == ""
    assert prepare_speech.uncovered_characters([utt("call mom")], [utt("play track")]) == "kprty"
