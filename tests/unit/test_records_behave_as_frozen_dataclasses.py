"""`jaring.cni.records` gives the classes on the binary's path what `dataclasses` gave them.

Each case builds the same class twice, with `dataclasses.dataclass` and with
`records.record`, and holds the record to the dataclass's behaviour.
"""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from jaring.cni import records


def pair(**options: Any) -> tuple[type, type]:
    """(dataclass, record) of one definition: a, b=2, c=factory, d not compared."""

    def body(decorate: Callable[[type], type], field: Callable[..., Any]) -> type:
        class Point:
            """A point."""

            a: int
            b: int = 2
            c: list[int] = field(default_factory=lambda: [7])
            d: str = field(default="x", compare=False)

            def total(self) -> int:
                return self.a + self.b

        return decorate(Point)

    return (
        body(dataclasses.dataclass(**options), dataclasses.field),
        body(records.record(**options), records.field),
    )


def outcome(call: Callable[[], object]) -> object:
    try:
        return call()
    except Exception as exc:  # the exception's type is the behaviour compared
        return type(exc).__name__


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"frozen": True},
        {"frozen": True, "order": True},
        {"eq": False},
        {"frozen": True, "eq": False},
        {"repr": False},
    ],
    ids=str,
)
def test_a_record_behaves_as_the_same_dataclass(options: dict[str, bool]) -> None:
    dc, rec = pair(**options)
    for make in (dc, rec):
        one, same, other = make(1), make(1, d="ignored"), make(1, 3)
        assert one.total() == 3
        assert one.c == [7] and one.c is not make(1).c  # a fresh default each time
        results = {
            "eq": (one == same, one == other, one != same, one == (1, 2)),
            "hash": outcome(lambda one=one, same=same: hash(one) == hash(same)),
            "order": outcome(lambda one=one, other=other: (one < other, other >= one)),
            "set": outcome(lambda one=one: setattr(one, "a", 5)),
            "del": outcome(lambda one=one: delattr(one, "b")),
            "repr_shape": repr(make(1)).endswith("Point(a=1, b=2, c=[7], d='x')"),
            "match_args": getattr(make, "__match_args__", None),
        }
        if make is dc:
            expected = results
        else:
            assert results == expected
    if options.get("repr", True):
        assert repr(dc(1)) == repr(rec(1))


def test_constructor_errors_match_dataclasses() -> None:
    dc, rec = pair(frozen=True)
    for call in (
        lambda make: make(),
        lambda make: make(1, 2, [], "d", "extra"),
        lambda make: make(1, a=1),
        lambda make: make(1, e=1),
    ):
        assert outcome(lambda call=call: call(rec)) == outcome(lambda call=call: call(dc))
    with pytest.raises(TypeError, match="missing required arguments: 'a'"):
        rec()


def test_frozen_record_refuses_assignment_with_an_attribute_error() -> None:
    _, rec = pair(frozen=True)
    point = rec(1)
    with pytest.raises(records.FrozenInstanceError, match="'a'"):
        point.a = 2
    assert isinstance(records.FrozenInstanceError("x"), AttributeError)
    assert point.a == 1


def test_hash_skips_fields_marked_hash_false_but_eq_still_compares_them() -> None:
    @records.record(frozen=True)
    class Ref:
        name: str
        extra: Mapping[str, Any] | None = records.field(default=None, hash=False)

    assert hash(Ref("n", {"k": 1})) == hash(Ref("n", None))  # a dict inside: still hashable
    assert Ref("n", {"k": 1}) != Ref("n", None)
    assert Ref("n", {"k": 1}) == Ref("n", {"k": 1})


def test_replace_and_asdict_match_dataclasses() -> None:
    dc, rec = pair(frozen=True)

    @records.record(frozen=True)
    class Outer:
        inner: Any
        items: tuple[Any, ...] = ()
        table: dict[str, Any] = records.field(default_factory=dict)

    value = Outer(rec(1), (rec(2), [rec(3)]), {"k": rec(4)})
    assert records.asdict(value) == {
        "inner": dataclasses.asdict(dc(1)),
        "items": (dataclasses.asdict(dc(2)), [dataclasses.asdict(dc(3))]),
        "table": {"k": dataclasses.asdict(dc(4))},
    }
    assert records.replace(rec(1), b=5) == rec(1, 5)
    assert records.replace(dc(1), b=5) == dc(1, 5)  # real dataclasses too
    with pytest.raises(TypeError):
        records.replace(rec(1), nope=1)
    with pytest.raises(TypeError):
        records.replace(object())
    with pytest.raises(TypeError):
        records.asdict(rec)  # the class, not an instance


def test_definition_errors_match_dataclasses() -> None:
    with pytest.raises(ValueError, match="mutable default"):

        @records.record()
        class Shared:
            items: list[int] = []  # noqa: RUF012  # the mistake under test

    with pytest.raises(TypeError, match="non-default argument"):

        @records.record()
        class Order:
            a: int = 1
            b: int

    with pytest.raises(ValueError, match="both default and default_factory"):
        records.field(default=1, default_factory=list)


def test_methods_the_class_defines_are_kept() -> None:
    @records.record(frozen=True)
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

    assert repr(Named("x")) == "<x>"
    assert Named("x") == Named("x")


def test_signature_names_the_fields_for_introspection() -> None:
    _, rec = pair(frozen=True)
    signature = inspect.signature(rec)
    assert list(signature.parameters) == ["a", "b", "c", "d"]
    assert signature.parameters["a"].default is inspect.Parameter.empty
    assert repr(signature.parameters["b"].default) == "2"
    assert rec.__init__.__qualname__.endswith("Point.__init__")


def test_records_import_neither_dataclasses_nor_inspect() -> None:
    code = (
        "import sys, jaring.cni.records as r\n"
        "@r.record(frozen=True)\n"
        "class A:\n"
        "    x: int = 1\n"
        "A(); hash(A()); repr(A())\n"
        "print(sorted(m for m in ('dataclasses', 'inspect', 'typing') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
