"""`jsoncodec` reads and writes JSON on `_json` alone (the binary's path loads
neither `json` nor `re` nor `enum`); whatever it produces or accepts must be
exactly what `json.loads`/`json.dumps` would, errors included (hypothesis:
generated documents, raw bytes, every separator and key-order choice)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jaring.cni import jsoncodec

from .test_import_budget import plain_layout

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text()
)
JSON_DOCS = st.recursive(
    SCALARS.filter(lambda v: not (isinstance(v, float) and math.isnan(v))),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
# dumps also takes what json.dumps takes: tuples, non-str keys, NaN
DUMPABLE = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text() | st.integers() | st.booleans() | st.none(), inner, max_size=4)
    ),
    max_leaves=20,
)
SEPARATORS = st.sampled_from([None, (",", ":"), (", ", ": "), (" ,", " : ")])


def outcome(call: Any, *args: Any, **kwargs: Any) -> tuple[str, object]:
    try:
        return "ok", call(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=400)
@given(JSON_DOCS, st.sampled_from(["", " ", "\n\t ", "\r\n"]), st.booleans(), st.booleans())
def test_documents_parse_as_json_loads_parses_them(
    doc: object, space: str, ascii_only: bool, as_bytes: bool
) -> None:
    text = space + json.dumps(doc, ensure_ascii=ascii_only) + space
    data: str | bytes = text.encode() if as_bytes else text
    assert outcome(jsoncodec.loads, data) == outcome(json.loads, data)


@settings(max_examples=400)
@given(st.binary(max_size=64) | st.text(max_size=32).map(str.encode) | st.text(max_size=32))
def test_any_input_gives_json_loads_answer_or_error(data: bytes | str) -> None:
    mine, theirs = outcome(jsoncodec.loads, data), outcome(json.loads, data)
    assert mine[0] == theirs[0]
    if mine[0] != "ok" or mine[1] == mine[1]:  # NaN is never equal to itself
        assert mine == theirs


@pytest.mark.parametrize(
    "data",
    [b"\xef\xbb\xbf{}", "\ufeff{}", '{"a": 1}'.encode("utf-16"), b"NaN", b"[-Infinity]", b"1 2"],
    ids=["utf8-bom", "str-bom", "utf16", "nan", "infinity", "trailing"],
)
def test_what_the_c_scanner_leaves_is_json_loads_own(data: bytes | str) -> None:
    mine, theirs = outcome(jsoncodec.loads, data), outcome(json.loads, data)
    assert mine[0] == theirs[0]
    assert repr(mine) == repr(theirs)  # repr: NaN compares unequal


@settings(max_examples=400)
@given(DUMPABLE, SEPARATORS, st.booleans(), st.sampled_from([None, None, 2]))
def test_documents_are_written_as_json_dumps_writes_them(
    doc: object, separators: tuple[str, str] | None, sort_keys: bool, indent: int | None
) -> None:
    mine = outcome(jsoncodec.dumps, doc, separators=separators, sort_keys=sort_keys, indent=indent)
    theirs = outcome(json.dumps, doc, separators=separators, sort_keys=sort_keys, indent=indent)
    assert mine == theirs


@pytest.mark.parametrize(
    "doc",
    [object(), {"k": {1, 2}}, {(1, 2): 3}, b"bytes"],
    ids=["object", "set", "tuple-key", "bytes"],
)
def test_what_json_cannot_write_fails_with_json_dumps_error(doc: object) -> None:
    assert outcome(jsoncodec.dumps, doc) == outcome(json.dumps, doc)


def test_a_circular_document_fails_as_json_dumps_fails() -> None:
    loop: list[object] = []
    loop.append(loop)
    assert outcome(jsoncodec.dumps, loop) == outcome(json.dumps, loop)


def test_reading_and_writing_load_neither_json_nor_re(tmp_path: Path) -> None:
    # -I -S and jaring.cni laid out as a plain install: the dev venv's editable
    # finder loads `re` itself.
    site = plain_layout(tmp_path, "cni")
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r})\n"
        "from jaring.cni import jsoncodec\n"
        'doc = jsoncodec.loads(b\'{"a": [1, 2.5, null, "\\\\u00e9"]}\')\n'
        "text = jsoncodec.dumps(doc, separators=(',', ':'))\n"
        'assert text == \'{"a":[1,2.5,null,"\\\\u00e9"]}\', text\n'
        "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
