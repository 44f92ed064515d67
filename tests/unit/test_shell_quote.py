"""errors.shell_quote quotes as shlex.quote does (the final report shows the command with it,
without importing shlex and re at start-up)."""

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
