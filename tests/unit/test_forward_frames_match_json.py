"""The forwarded path reads and writes its frames without the `json` module in
the common case; whatever it produces or accepts must be exactly what `json`
would (hypothesis: generated environments, exit codes and payloads). Its JSON
reader is `jsoncodec.loads`, tested in test_jsoncodec_*."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from jaring.metaplugin import forward


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
