"""JSON as `json.loads` and `json.dumps` read and write it, on the C accelerator alone.

`import json` costs every CNI call milliseconds: `json.decoder` and
`json.encoder` compile regular expressions at import, which loads `re` and
with it `enum`. The scanner and encoder they hand the work to live in `_json`
and load on their own. `loads` and `dumps` drive them with `json`'s defaults
(ensure_ascii, allow_nan, circular check) and give the same answers (tested
against `json` with generated documents). What the C path does not take (a
`default`, indentation, another encoding, any error) goes to `json` itself,
so an error is always `json`'s own (`json.JSONDecodeError` is a ValueError).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_SPACE = " \t\n\r"  # JSON's whitespace


class _Scanner:
    """The settings `json.JSONDecoder()` hands its C scanner, as a scanner context."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {
        "NaN": float("nan"),
        "Infinity": float("inf"),
        "-Infinity": float("-inf"),
    }.__getitem__


def loads(data: str | bytes | bytearray) -> Any:
    """`json.loads(data)`, without importing `json` when the C scanner can read it."""
    try:
        import _json

        text = data if isinstance(data, str) else bytes(data).decode()
        start = len(text) - len(text.lstrip(_SPACE))
        # typeshed names the context type after the scanner; any object with
        # JSONDecoder's attributes is what the C code reads.
        scanner = _json.make_scanner(_Scanner)  # type: ignore[arg-type]
        doc, end = scanner(text, start)
        if not text[end:].strip(_SPACE):
            return doc
    except Exception:  # anything odd (a BOM, UTF-16, bad JSON): json.loads decides and explains
        pass
    import json

    return json.loads(data)


def _unserializable(obj: object) -> None:
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")


def dumps(
    obj: object,
    *,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
    indent: int | None = None,
) -> str:
    """`json.dumps(obj, separators=..., sort_keys=..., indent=...)`."""
    item_sep, key_sep = separators or ((",", ": ") if indent is not None else (", ", ": "))
    if indent is None:
        try:
            from _json import encode_basestring_ascii, make_encoder
        except ImportError:  # an interpreter without the accelerator: json's own path
            pass
        else:
            # The call json.JSONEncoder.iterencode makes: markers (circular check),
            # default, string encoder, indent, key and item separators, sort_keys,
            # skipkeys, allow_nan.
            encode = make_encoder(
                {},
                _unserializable,
                encode_basestring_ascii,
                None,
                key_sep,
                item_sep,
                sort_keys,
                False,
                True,
            )
            return "".join(encode(obj, 0))
    import json

    return json.dumps(obj, separators=(item_sep, key_sep), sort_keys=sort_keys, indent=indent)
