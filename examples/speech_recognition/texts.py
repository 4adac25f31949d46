"""Transcripts of what people say to a digits and numbers recogniser, drawn at random.

Kinds (:data:`KINDS`; each drawn by :func:`draw_text` from a ``random.Random``):

- ``digit``: one digit word, ``"zero"`` .. ``"nine"`` or ``"oh"``;
- ``digits``: a string of 1 to 10 digits (length uniform), each zero read ``"oh"`` in 30% of
  the strings (``"four oh one five"``);
- ``number``: a cardinal ``0..1,000,000`` in one of its usual readings
  (:func:`number_words.cardinal_variants`; the number of digits is uniform in 1..7, so small
  numbers are as common as large ones), in 20% of draws a year ``1900..2099``
  (:func:`number_words.year`, ``"twenty twenty six"``), in 15% one number word alone
  (:data:`NUMBER_WORDS`: ``"ten"`` .. ``"nineteen"``, ``"twenty"`` .. ``"ninety"``,
  ``"hundred"``, ``"thousand"``, ``"million"``), as people read or repeat them, and in 10% a
  teen and its ty next to each other (:func:`minimal_pair_text`: ``"thirteen thirty five"``,
  ``"ninety nineteen"``), so that the two are heard side by side;
- ``time``: ``"half past seven"``, ``"seven thirty"``, ``"ten to nine"``, ``"six o'clock"``,
  ``"noon"``, ... (:func:`time_text`);
- ``date``: ``"the third of march"``, ``"march third twenty twenty six"``, ...
  (:func:`date_text`);
- ``command``: short requests to a phone or speaker (``"call mom"``, ``"set a timer for five
  minutes"``, ``"set an alarm for half past six"``; :func:`command_text`).

Open-vocabulary sentences (Brown) are chosen by ``prepare_speech``, not drawn here.

**Held-out texts.** :func:`text_split` puts each text in ``train``, ``dev`` or ``test`` by a
hash of the text (5% dev, 5% test), so the three splits never share a text; :func:`draw`
draws until it has texts of the wanted split. One-word texts (``"seven"``, ``"oh"``,
``"twelve"``, ``"stop"``) belong to every split: there are too few of them to hold any out, and
a word never heard in training could not be recognised. :func:`draw` keeps such a text with the
split's share (90% train, 5% dev, 5% test), so every split has the generator's mix of kinds.
"""
import random
import zlib
from typing import Callable, Dict, List

from examples.speech_recognition import number_words as nw

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
NAMES = ("mom", "dad", "john", "mary", "sarah", "david", "anna", "peter", "grandma", "the office")
ITEMS = ("apples", "eggs", "bananas", "tomatoes", "onions", "lemons", "bottles of water")
PLACES = ("kitchen", "living room", "bedroom", "bathroom", "office", "garage")
FIXED_COMMANDS = (
    "what time is it", "stop", "pause", "next song", "play some music", "turn the volume up",
    "turn the volume down", "what is the weather like today", "what is the weather tomorrow",
    "cancel the alarm", "read my messages", "open the calendar", "take a picture",
    "turn off the radio", "where is the nearest pharmacy", "hang up", "repeat that please")
SPLITS = ("train", "dev", "test")
HELD_OUT_PERCENT = 5  # per held-out split
SHARE = {"train": 1 - 2 * HELD_OUT_PERCENT / 100, "dev": HELD_OUT_PERCENT / 100,
         "test": HELD_OUT_PERCENT / 100}
ZERO_AS_OH = 0.3
YEAR_SHARE = 0.2
WORD_SHARE = 0.15
PAIR_SHARE = 0.1
NUMBER_WORDS = nw.ONES[10:] + nw.TENS[2:] + ("hundred", "thousand", "million")


def digit_text(rng: random.Random) -> str:
    return rng.choice(nw.ONES[:10] + ("oh",))


def digits_text(rng: random.Random, min_len: int = 1, max_len: int = 10) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(min_len, max_len)))
    return nw.digit_words(digits, oh=rng.random() < ZERO_AS_OH)


def minimal_pair_text(rng: random.Random) -> str:
    """A four-digit number read in pairs (:func:`number_words.in_pairs`) whose two halves are a
    teen and the ty of the same digit, 13..19 with 30..90: ``"thirteen thirty"``, ``"sixteen
    sixty two"`` (1662) or ``"forty fourteen"`` (4014)."""
    d = rng.randint(3, 9)
    if rng.random() < 0.5:
        return nw.in_pairs((10 + d) * 100 + 10 * d + rng.randint(0, 9))
    return nw.in_pairs(1000 * d + 10 + d)


def number_text(rng: random.Random) -> str:
    draw = rng.random()
    if draw < WORD_SHARE:
        return rng.choice(NUMBER_WORDS)
    if draw < WORD_SHARE + PAIR_SHARE:
        return minimal_pair_text(rng)
    if draw < WORD_SHARE + PAIR_SHARE + YEAR_SHARE:
        return nw.year(rng.randint(1900, 2099), and_=rng.random() < 0.5)
    n_digits = rng.randint(1, 7)
    n = nw.MAX_CARDINAL if n_digits == 7 else rng.randint(10 ** (n_digits - 1) - (n_digits == 1),
                                                           10 ** n_digits - 1)
    return rng.choice(nw.cardinal_variants(n))


def time_text(rng: random.Random) -> str:
    """A clock time read one of the usual ways: ``"seven thirty"``, ``"seven oh five"``,
    ``"half past seven"``, ``"quarter to eight"``, ``"ten to nine"``, ``"twenty five past
    three"``, ``"seven o'clock"``, ``"noon"``, ``"midnight"``, sometimes followed by ``"in the
    morning"`` / ``"in the afternoon"`` / ``"in the evening"``."""
    hour, minute = rng.randint(1, 12), rng.choice(range(0, 60, 5)) if rng.random() < 0.7 \
        else rng.randint(0, 59)
    next_hour = nw.ONES[hour % 12 + 1] if hour < 12 else "one"
    forms = []
    if minute == 0:
        forms += [f"{nw.ONES[hour]} o'clock", nw.ONES[hour]]
        if hour == 12:
            forms += ["noon", "midnight"]
    else:
        minute_words = f"oh {nw.ONES[minute]}" if minute < 10 else nw.cardinal(minute)
        forms.append(f"{nw.ONES[hour]} {minute_words}")
        if minute == 30:
            forms.append(f"half past {nw.ONES[hour]}")
        elif minute in (15, 45):
            forms.append(f"quarter past {nw.ONES[hour]}" if minute == 15
                         else f"quarter to {next_hour}")
        elif minute < 30:
            minutes = nw.cardinal(minute) + ("" if minute % 5 == 0 else " minutes")
            forms.append(f"{minutes} past {nw.ONES[hour]}")
        else:
            minutes = nw.cardinal(60 - minute) + ("" if minute % 5 == 0 else " minutes")
            forms.append(f"{minutes} to {next_hour}")
    text = rng.choice(forms)
    if text not in ("noon", "midnight") and rng.random() < 0.2:
        text += rng.choice((" in the morning", " in the afternoon", " in the evening"))
    return text


def date_text(rng: random.Random) -> str:
    """A date: ``"the third of march"``, ``"march third"``, ``"march the third"``, each with a
    year (``"march third twenty twenty six"``) half of the time."""
    month = rng.randrange(12)
    day = nw.ordinal(rng.randint(1, DAYS_IN_MONTH[month]))
    text = rng.choice((f"the {day} of {MONTHS[month]}", f"{MONTHS[month]} {day}",
                       f"{MONTHS[month]} the {day}"))
    if rng.random() < 0.5:
        text += " " + nw.year(rng.randint(1950, 2049), and_=rng.random() < 0.5)
    return text


def _small_number(rng: random.Random, low: int = 1, high: int = 60) -> str:
    return nw.cardinal(rng.randint(low, high))


def command_text(rng: random.Random) -> str:
    """A short command, from templates with numbers, times, dates, names and places."""
    templates: List[Callable[[], str]] = [
        lambda: rng.choice(FIXED_COMMANDS),
        lambda: f"call {rng.choice(NAMES)}",
        lambda: f"call {digits_text(rng, 3, 10)}",
        lambda: f"text {rng.choice(NAMES)} i will be there at {time_text(rng)}",
        lambda: f"set a timer for {_small_number(rng)} "
                f"{rng.choice(('minutes', 'seconds', 'hours'))}",
        lambda: f"set an alarm for {time_text(rng)}",
        lambda: f"remind me to call {rng.choice(NAMES)} at {time_text(rng)}",
        lambda: f"add {_small_number(rng, 2, 12)} {rng.choice(ITEMS)} to the shopping list",
        lambda: f"turn {rng.choice(('on', 'off'))} the lights in the {rng.choice(PLACES)}",
        lambda: f"set the temperature to {_small_number(rng, 15, 30)} degrees",
        lambda: f"schedule a meeting on {date_text(rng)}",
        lambda: f"what is {number_text(rng)} plus {_small_number(rng, 1, 100)}",
        lambda: f"play track {_small_number(rng, 1, 20)}",
    ]
    return rng.choice(templates)()


GENERATORS: Dict[str, Callable[[random.Random], str]] = {
    "digit": digit_text, "digits": digits_text, "number": number_text, "time": time_text,
    "date": date_text, "command": command_text}
KINDS = tuple(GENERATORS)


def text_split(text: str) -> str:
    """``"train"``, ``"dev"`` or ``"test"`` for a text (a hash of it), or ``"any"`` for a
    one-word text."""
    if " " not in text:
        return "any"
    bucket = zlib.crc32(text.encode("utf-8")) % 100
    if bucket < HELD_OUT_PERCENT:
        return "test"
    return "dev" if bucket < 2 * HELD_OUT_PERCENT else "train"


def draw(kind: str, n: int, rng: random.Random, split: str) -> List[str]:
    """``n`` texts of ``kind`` belonging to ``split`` (or to every split), repeats allowed."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown text kind {kind!r}; allowed: {', '.join(KINDS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        if tries > 1000 * (n + 1):
            raise RuntimeError(f"{kind}: found {len(out)} of {n} {split} texts in {tries} draws")
        text = GENERATORS[kind](rng)
        owner = text_split(text)
        if owner == split or owner == "any" and rng.random() < SHARE[split]:
            out.append(text)
    return out
