"""English number words, as people say them: cardinals, years, digits, ordinals.

Every function returns lowercase words separated by single spaces, without hyphens or commas
(``"twenty one"``, not ``"twenty-one"``), the form of the transcripts.

- :func:`cardinal` ``0 <= n <= 1,000,000``: ``"two hundred and five"`` (British, ``and=True``)
  or ``"two hundred five"`` (American).
- :func:`cardinal_variants`: the usual readings of ``n`` (with and without ``and``, and
  ``"twelve hundred"`` for 1,200 where the hundreds reading is common).
- :func:`year` ``1000..2999``: ``"nineteen eighty four"``, ``"nineteen oh five"``,
  ``"nineteen hundred"``, ``"two thousand and five"``, ``"twenty twenty six"``.
- :func:`in_pairs` ``1000..9999``: a four-digit number read as two two-digit numbers, as years
  are (``"thirteen thirty"``, ``"forty fourteen"``).
- :func:`digit_words`: a digit string read digit by digit, zero as ``"zero"`` or ``"oh"``.
- :func:`ordinal` ``1..99``: ``"first"``, ``"twenty third"``.
"""
from typing import List

ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen")
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ORDINAL_ONES = ("zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh",
                "eighth", "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth",
                "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth")
ORDINAL_TENS = ("", "", "twentieth", "thirtieth", "fortieth", "fiftieth", "sixtieth",
                "seventieth", "eightieth", "ninetieth")
MAX_CARDINAL = 1_000_000


def _below_100(n: int) -> str:
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + (f" {ONES[ones]}" if ones else "")


def _below_1000(n: int, and_: bool) -> str:
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _below_100(rest)
    head = f"{ONES[hundreds]} hundred"
    if not rest:
        return head
    return f"{head} {'and ' if and_ else ''}{_below_100(rest)}"


def cardinal(n: int, and_: bool = True) -> str:
    """``n`` in words, ``0 <= n <= 1,000,000``; ``and_``: "and" before the last two digits
    after a hundred or thousand (``"one thousand and five"``, ``"two hundred and five"``)."""
    if not isinstance(n, int) or not 0 <= n <= MAX_CARDINAL:
        raise ValueError(f"cardinal: {n!r} is not an integer in 0..{MAX_CARDINAL:,}")
    if n == MAX_CARDINAL:
        return "one million"
    thousands, rest = divmod(n, 1000)
    if not thousands:
        return _below_1000(rest, and_)
    head = f"{_below_1000(thousands, and_)} thousand"
    if not rest:
        return head
    join = " and " if and_ and rest < 100 else " "
    return head + join + _below_1000(rest, and_)


def cardinal_variants(n: int) -> List[str]:
    """The usual spoken forms of ``n``, without repeats: with "and", without "and", and for
    ``1,100 <= n <= 9,999`` with a non-zero hundreds digit the hundreds reading
    (``1,250`` -> ``"twelve hundred and fifty"``)."""
    forms = [cardinal(n, and_=True), cardinal(n, and_=False)]
    if 1100 <= n <= 9999 and (n // 100) % 10:
        hundreds, rest = divmod(n, 100)
        for and_ in (True, False):
            tail = f" {'and ' if and_ else ''}{_below_100(rest)}" if rest else ""
            forms.append(f"{_below_100(hundreds)} hundred{tail}")
    return list(dict.fromkeys(forms))


def year(y: int, and_: bool = True) -> str:
    """A year ``1000..2999`` as it is read (:func:`in_pairs`): ``"nineteen eighty four"``,
    ``"twenty twenty six"``, ``"nineteen oh five"``, ``"nineteen hundred"``, ``"two thousand
    (and) five"``."""
    if not isinstance(y, int) or not 1000 <= y <= 2999:
        raise ValueError(f"year: {y!r} is not an integer in 1000..2999")
    return in_pairs(y, and_)


def in_pairs(n: int, and_: bool = True) -> str:
    """``1000 <= n <= 9999`` read in pairs, as years are: the first two digits and the last two
    as numbers (``"thirteen thirty"``, ``"forty fourteen"``), ``"oh"`` for a zero tens digit
    (``"nineteen oh five"``), ``"X hundred"`` for whole hundreds (``"nineteen hundred"``), and
    the cardinal when the second and third digits are zero (``"two thousand (and) five"``)."""
    if not isinstance(n, int) or not 1000 <= n <= 9999:
        raise ValueError(f"in_pairs: {n!r} is not an integer in 1000..9999")
    head, rest = divmod(n, 100)
    if head % 10 == 0 and rest < 10:
        return cardinal(n, and_)
    if rest == 0:
        return f"{_below_100(head)} hundred"
    tail = f"oh {ONES[rest]}" if rest < 10 else _below_100(rest)
    return f"{_below_100(head)} {tail}"


def digit_words(digits: str, oh: bool = False) -> str:
    """A string of digits read one by one (``"305"`` -> ``"three zero five"``); ``oh``: zero as
    ``"oh"``."""
    if not digits or not digits.isdigit():
        raise ValueError(f"digit_words: {digits!r} is not a non-empty string of digits")
    return " ".join("oh" if d == "0" and oh else ONES[int(d)] for d in digits)


def ordinal(n: int) -> str:
    """``1 <= n <= 99`` as an ordinal (``"third"``, ``"twenty first"``, ``"thirtieth"``)."""
    if not isinstance(n, int) or not 1 <= n <= 99:
        raise ValueError(f"ordinal: {n!r} is not an integer in 1..99")
    if n < 20:
        return ORDINAL_ONES[n]
    tens, ones = divmod(n, 10)
    return f"{TENS[tens]} {ORDINAL_ONES[ones]}" if ones else ORDINAL_TENS[tens]
