"""The forwarded path reads and writes its frames without the `json` module in
the common case; whatever it produces or accepts must be exactly what `json`
would (hypothesis: generated documents, raw bytes and environments)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jaring.metaplugin import forward

JSON_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def outcome(parse: Any, data: bytes) -> tuple[str, object]:
    try:
        return "ok", parse(data)
    except ValueError as exc:
        return "error", str(exc)


@settings(max_examples=400)
@given(JSON_DOCS, st.sampled_from(["", " ", "\n\t ", "\r\n"]), st.booleans())
def test_documents_parse_as_json_loads_parses_them(
    doc: object, space: str, ascii_only: bool
) -> None:
    data = (space + json.dumps(doc, ensure_ascii=ascii_only) + space).encode()
    assert outcome(forward.loads, data) == outcome(json.loads, data)


@settings(max_examples=400)
@given(st.binary(max_size=64) | st.text(max_size=32).map(str.encode))
def test_any_bytes_give_json_loads_answer_or_error(data: bytes) -> None:
    mine, theirs = outcome(forward.loads, data), outcome(json.loads, data)
    assert mine[0] == theirs[0]
    if mine[0] == "ok" and mine[1] == mine[1]:  # NaN is never equal to itself
        assert mine == theirs


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(forward.FORWARDED_ENV), st.text()), st.binary(max_size=64))
def test_request_frames_decode_to_the_environment_sent(env: dict[str, str], stdin: bytes) -> None:
    header, body = forward.split_frame(forward.encode_request(env, stdin))
    assert header == {"env": env}
    assert body == stdin


@given(st.integers(min_value=-(2**31), max_value=2**31), st.binary(max_size=64))
def test_answer_frames_round_trip(code: int, stdout: bytes) -> None:
    assert forward.answer_code(forward.encode_answer(code, stdout)) == (code, stdout)
    spaced = json.dumps({"code": code}).encode() + b"\n" + stdout  # another spelling
    assert forward.answer_code(spaced) == (code, stdout)
