"""Frozen value classes for the `jaring` binary's path, made without compiling code.

`dataclasses` writes each class's `__init__`, `__repr__`, `__eq__`, `__hash__`,
`__setattr__` and `__delattr__` as source text and compiles it: ~0.7 ms a
class, and with the `inspect` it imports ~20 ms of every standalone call.
`record` gives the same behaviour (the subset jaring uses: `frozen`, `eq`,
`order`, `repr`; `field` with `default`, `default_factory`, `compare`,
`hash`; `replace`; `asdict`) from shared functions, and the type checker
reads it as a dataclass (PEP 681). Used by `jaring.cni` and the modules on
the binary's path; the rest of jaring may use `dataclasses`.
"""

from __future__ import annotations

# The C module `operator.py` wraps: the wrapper costs every call of the binary ~0.5 ms.
import _operator
from _operator import attrgetter

TYPE_CHECKING = False
if TYPE_CHECKING:
    import inspect
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_options):  # the type checker's marker only
        return lambda decorator: decorator


_MISSING: Any = object()
_FIELDS = "__record_fields__"


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record (as `dataclasses.FrozenInstanceError`)."""


class Field:
    """One field of a record: its name, default and comparison flags (made by `field`)."""

    __slots__ = ("compare", "default", "default_factory", "hash", "name", "repr")

    def __init__(
        self,
        default: Any,
        default_factory: Callable[[], Any] | None,
        compare: bool,
        hashed: bool,
        shown: bool,
    ) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.compare = compare
        self.hash = hashed
        self.repr = shown

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.default_factory is None

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    compare: bool = True,
    hash: bool | None = None,  # dataclasses.field's own keyword
    repr: bool = True,  # dataclasses.field's own keyword
) -> Any:
    """A field with a default, a factory or comparison flags (`dataclasses.field`)."""
    if default is not _MISSING and default_factory is not None:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, compare, compare if hash is None else hash, repr)


@dataclass_transform(field_specifiers=(field,))
def record(
    *,
    frozen: bool = False,
    eq: bool = True,
    order: bool = False,
    repr: bool = True,  # dataclasses.dataclass's own keyword
) -> Callable[[type[T]], type[T]]:
    """Make a class a record, as `@dataclasses.dataclass(...)` would."""
    if order and not eq:
        raise ValueError("eq must be true if order is true")

    def make(cls: type[T]) -> type[T]:
        fields = _collect(cls)
        setattr(cls, _FIELDS, fields)
        _install(cls, fields, frozen=frozen, eq=eq, order=order, show=repr)
        return cls

    return make


def fields(obj: object) -> tuple[Field, ...]:
    """The fields of a record class or instance, in definition order."""
    try:
        found: tuple[Field, ...] = getattr(obj, _FIELDS)
    except AttributeError:
        raise TypeError(f"{obj!r} is not a record") from None
    return found


def is_record(obj: object) -> bool:
    return hasattr(obj, _FIELDS)


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of `obj` with `changes` (`dataclasses.replace`; real dataclasses too)."""
    if not is_record(obj):
        import dataclasses

        # A real dataclass (or TypeError, as dataclasses.replace says for anything else).
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]  # T may be any object here
    for f in fields(obj):
        if f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


def asdict(obj: object) -> dict[str, Any]:
    """The record as plain dicts, lists and tuples, recursively (`dataclasses.asdict`)."""
    if not is_record(obj) or isinstance(obj, type):
        raise TypeError("asdict() should be called on record instances")
    out: dict[str, Any] = _plain(obj)
    return out


def _plain(value: Any) -> Any:
    if is_record(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*[_plain(v) for v in value])
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return type(value)((_plain(k), _plain(v)) for k, v in value.items())
    return value


def _collect(cls: type) -> tuple[Field, ...]:
    by_name: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for inherited in getattr(base, _FIELDS, ()):
            by_name[inherited.name] = inherited
    # The class's own annotations, as dataclasses reads them (not inherited ones).
    annotations: dict[str, Any] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063  # inspect.get_annotations would load inspect
    for name, annotation in annotations.items():
        if isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, Field) else field(default=value)
        if spec.default is not _MISSING and type(spec.default).__hash__ is None:
            raise ValueError(  # as dataclasses: an unhashable default would be shared
                f"mutable default {type(spec.default)} for field {name} is not allowed: "
                "use default_factory"
            )
        spec.name = name
        if spec.default is not _MISSING:
            setattr(cls, name, spec.default)
        elif value is not _MISSING:
            delattr(cls, name)  # a field() without default: no class attribute
        by_name.pop(name, None)
        by_name[name] = spec
    fields = tuple(by_name.values())
    seen_default = False
    for f in fields:
        if not f.required:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    return fields


def _key(names: tuple[str, ...]) -> Callable[[object], tuple[Any, ...]]:
    """obj -> (obj.a, obj.b, ...), the tuple dataclasses compare and hash."""
    if not names:
        return lambda _obj: ()
    get = attrgetter(*names)
    if len(names) == 1:
        return lambda obj: (get(obj),)
    return get


def _install(
    cls: type, fields: tuple[Field, ...], *, frozen: bool, eq: bool, order: bool, show: bool
) -> None:
    """Set the methods `dataclass` would generate, except those the class defines."""
    methods: dict[str, Any] = {"__init__": _initializer(cls.__qualname__, fields)}
    if show:
        methods["__repr__"] = _representation(tuple(f.name for f in fields if f.repr))
    key = _key(tuple(f.name for f in fields if f.compare))
    if eq:
        methods["__eq__"] = _comparison(key, _operator.eq)
    if order:
        for method, compare in _ORDER.items():
            methods[method] = _comparison(key, compare)
    for attr, method in methods.items():
        if attr not in cls.__dict__:
            method.__name__ = attr
            method.__qualname__ = f"{cls.__qualname__}.{attr}"
            setattr(cls, attr, method)
    always: dict[str, Any] = {
        "__match_args__": tuple(f.name for f in fields),
        "__signature__": _Signature(),
    }
    if frozen:
        always["__setattr__"] = _refuse_set
        always["__delattr__"] = _refuse_delete
        if eq:
            hash_key = _key(tuple(f.name for f in fields if f.hash))
            always["__hash__"] = lambda self: hash(hash_key(self))
    elif eq:
        always["__hash__"] = None  # mutable and comparable: unhashable, as dataclasses do
    for attr, value in always.items():
        setattr(cls, attr, value)


def _representation(shown: tuple[str, ...]) -> Callable[[object], str]:
    def represent(self: object) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{self.__class__.__qualname__}({inner})"

    return represent


def _initializer(name: str, fields: tuple[Field, ...]) -> Callable[..., None]:
    names = tuple(f.name for f in fields)
    known = frozenset(names)
    count = len(names)
    defaults = tuple((f.name, f.default, f.default_factory) for f in fields if not f.required)

    def initialize(self: object, *args: Any, **kwargs: Any) -> None:
        if len(args) > count:
            raise TypeError(
                f"{name}.__init__() takes {count + 1} positional arguments "
                f"but {len(args) + 1} were given"
            )
        values = self.__dict__  # filled directly: a frozen record refuses setattr
        values.update(zip(names, args, strict=False))  # len(args) <= count, checked above
        for field_name, value in kwargs.items():
            if field_name not in known:
                raise TypeError(
                    f"{name}.__init__() got an unexpected keyword argument {field_name!r}"
                )
            if field_name in values:
                raise TypeError(
                    f"{name}.__init__() got multiple values for argument {field_name!r}"
                )
            values[field_name] = value
        if len(values) < count:
            for field_name, default, factory in defaults:
                if field_name not in values:
                    values[field_name] = default if factory is None else factory()
            if len(values) < count:
                missing = ", ".join(f"{n!r}" for n in names if n not in values)
                raise TypeError(f"{name}.__init__() missing required arguments: {missing}")

    return initialize


def _comparison(
    key: Callable[[object], tuple[Any, ...]], compare: Callable[[Any, Any], Any]
) -> Callable[[object, object], Any]:
    def method(self: object, other: object) -> Any:
        if other.__class__ is self.__class__:
            return compare(key(self), key(other))
        return NotImplemented

    return method


_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "__lt__": _operator.lt,
    "__le__": _operator.le,
    "__gt__": _operator.gt,
    "__ge__": _operator.ge,
}


def _refuse_set(self: object, attr: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {attr!r}")


def _refuse_delete(self: object, attr: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {attr!r}")


class _Signature:
    """`inspect.signature(cls)` for a record: built (and `inspect` loaded) on first use."""

    def __get__(self, instance: object, owner: type) -> inspect.Signature:
        import inspect

        empty = inspect.Parameter.empty
        return inspect.Signature(
            [
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    default=empty if f.required else _Default(f),
                )
                for f in fields(owner)
            ]
        )


class _Default:
    """A default shown in a signature: the value, or the factory that makes it."""

    def __init__(self, f: Field) -> None:
        self.shown = f"<factory {f.default_factory!r}>" if f.default_factory else repr(f.default)

    def __repr__(self) -> str:
        return self.shown
