"""errors.py's text for a terminal, written without shlex and re (the final report uses it at
every run's end): shell_quote quotes as shlex.quote does; shown leaves printable text alone."""

from __future__ import annotations

import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from carbonwrap.errors import shell_quote


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=st.characters(), max_size=12))
def test_as_shlex_quotes_any_word(word: str) -> None:
    assert shell_quote(word) == shlex.quote(word)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="ab_@%+=:,./-'\" $é\n\t*", max_size=10))
def test_as_shlex_quotes_words_near_the_safe_set(word: str) -> None:
    assert shell_quote(word) == shlex.quote(word)


def test_every_unsafe_character_is_one_isprintable_refuses() -> None:
    """errors.shown returns printable text as it is: that skips no character it must escape."""
    import re

    from carbonwrap import errors

    unsafe = re.compile(errors._UNSAFE)
    assert all(not chr(c).isprintable() for c in range(0x110000) if unsafe.fullmatch(chr(c)))
    assert errors.shown("1.60 µg · région") == "1.60 µg · région"
    assert errors.shown("a\u202eb\x1b") == "a\\u202eb\\x1b"
