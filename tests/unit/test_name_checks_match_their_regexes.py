"""The binary checks names with character sets instead of `re` (which loads
`enum` and costs milliseconds a call); each check accepts exactly what the
regular expression it replaced accepts with `fullmatch` (hypothesis: text
over the names' own alphabet, and any text)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from jaring.cni.selection import is_label, is_mac
from jaring.metaplugin.sources import is_dns1123_name
from jaring.metaplugin.statecache import is_safe_id

LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def near(alphabet: str, max_size: int) -> st.SearchStrategy[str]:
    """Mostly the valid alphabet, sometimes anything."""
    return st.text(alphabet=alphabet, max_size=max_size) | st.text(max_size=max_size)


@settings(max_examples=600)
@given(near("abz09-A.", 70))
def test_label(text: str) -> None:
    assert is_label(text) == (len(text) <= 63 and LABEL.fullmatch(text) is not None)


@settings(max_examples=600)
@given(near("0aF:g-", 19) | st.sampled_from(["aa:bb:cc:dd:ee:ff", "0A:1b:2C:3d:4E:5f"]))
def test_mac(text: str) -> None:
    assert is_mac(text) == (MAC.fullmatch(text) is not None)


@settings(max_examples=600)
@given(near("az09-.A_", 260) | st.text(alphabet="ab.-", min_size=250, max_size=256))
def test_dns1123_name(text: str) -> None:
    assert is_dns1123_name(text) == (SUBDOMAIN.fullmatch(text) is not None)


@settings(max_examples=600)
@given(near("aZ09_.-/\n ", 40))
def test_container_id(text: str) -> None:
    # fullmatch: the old `^...$` with `match` also let a trailing newline through
    assert is_safe_id(text) == (SAFE_ID.fullmatch(text) is not None)
