"""`NamedTuple`, `Protocol` and `dataclass` for the modules `carbonwrap run` loads before the
command starts, without importing `typing` or `dataclasses` (issue 19: typing with the `re`,
`enum` and `warnings` it pulls in, and dataclasses with `inspect`, `ast`, `dis` and `tokenize`,
each cost about as much as the interpreter's own start-up).

Type checkers see `typing.NamedTuple` itself (the `TYPE_CHECKING` branch), so a class written

    from carbonwrap.typing_lite import NamedTuple

    class Mount(NamedTuple):
        mount_point: str
        root: str = "/"

is checked exactly as one based on typing's. At run time the class is what typing would make
of it: `collections.namedtuple` over the annotated names in order, the values given in the body
as defaults, and the body's methods, properties, docstring and other attributes set on it.
Generic named tuples and multiple inheritance are not supported (typing's are; nothing here
needs them). tests/unit/test_typing_lite.py holds the classes to typing's on the same bodies.

`dataclass` and `field` are checked as the dataclasses module's. At run time `@dataclass` and
`@dataclass(frozen=True)` give the class what dataclasses would: an `__init__` over the
annotated names in order (a value in the body is the default; `field(default_factory=f)` calls
`f` for each instance), `__repr__`, `__eq__`, `__match_args__`, and for a frozen class
`__setattr__`/`__delattr__` that raise `FrozenInstanceError` (an AttributeError) and
`__hash__` over the fields; `replace` is `dataclasses.replace`. No other options, no
inheritance between such classes, no `ClassVar` or `InitVar` (nothing here needs them).

`Protocol` is checked as typing's; at run time it is `object`: a protocol class is then a plain
class with the methods' stubs, used by nothing but annotations (no `isinstance` against it).
The other names of typing (`Any`, `TextIO`, `TypeVar`, …) are imported by the run path's
modules under `if TYPE_CHECKING:` only, their annotations kept as strings
(`from __future__ import annotations`).
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from dataclasses import FrozenInstanceError as FrozenInstanceError
    from dataclasses import dataclass as dataclass
    from dataclasses import field as field
    from dataclasses import replace as replace
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
else:
    Protocol = object

    class FrozenInstanceError(AttributeError):
        """Assigning to a field of a frozen class (dataclasses' exception of that name)."""

    class _Factory:
        """`field(default_factory=make)`: `make()` for each instance."""

        __slots__ = ("make",)

        def __init__(self, make: object) -> None:
            self.make = make

    def field(*, default_factory: object) -> object:
        """dataclasses.field, for `default_factory` only."""
        return _Factory(default_factory)

    def dataclass(cls: type | None = None, /, *, frozen: bool = False) -> object:
        """@dataclass or @dataclass(frozen=True): see the module's docstring."""
        if cls is None:
            return lambda cls: _dataclass(cls, frozen)
        return _dataclass(cls, frozen)

    def _dataclass(cls: type, frozen: bool) -> type:
        names = list(vars(cls).get("__annotations__", {}))
        if any(base is not object and "__match_args__" in vars(base) for base in cls.__mro__[1:]):
            raise TypeError(f"{cls.__name__}: no inheritance between carbonwrap dataclasses")
        scope: dict[str, object] = {"_setattr": object.__setattr__}
        params, body = [], []
        for name in names:
            default = vars(cls).get(name, _NONE)
            if isinstance(default, _Factory):
                scope[f"_make_{name}"] = default.make
                params.append(f"{name}=_NONE")
                value = f"_make_{name}() if {name} is _NONE else {name}"
                delattr(cls, name)  # as dataclasses does: the factory is not a class attribute
            elif default is not _NONE:
                scope[f"_default_{name}"] = default
                params.append(f"{name}=_default_{name}")
                value = name
            elif params and "=" in params[-1]:
                raise TypeError(f"{cls.__name__}: non-default argument {name!r} follows default")
            else:
                params.append(name)
                value = name
            body.append(
                f"_setattr(self, {name!r}, {value})" if frozen else f"self.{name} = {value}"
            )
        scope["_NONE"] = _NONE
        source = f"def __init__(self, {', '.join(params)}):\n    " + "\n    ".join(body or ["pass"])
        exec(source, scope)  # one function, as dataclasses makes it (keyword and positional)
        init = scope["__init__"]
        init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
        cls.__init__ = init  # type: ignore[misc]
        cls.__match_args__ = tuple(names)  # type: ignore[attr-defined]
        cls.__repr__ = _repr  # type: ignore[method-assign]
        cls.__eq__ = _eq  # type: ignore[method-assign]
        if frozen:
            cls.__setattr__ = _frozen  # type: ignore[method-assign, assignment]
            cls.__delattr__ = _frozen  # type: ignore[method-assign, assignment]
            cls.__hash__ = _hash  # type: ignore[method-assign]
        else:
            cls.__hash__ = None  # type: ignore[assignment]  # eq without frozen: unhashable
        return cls

    _NONE = object()  # no default given

    def _values(self: object) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in type(self).__match_args__)  # type: ignore[attr-defined]

    def _repr(self: object) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in type(self).__match_args__  # type: ignore[attr-defined]
        )
        return f"{type(self).__qualname__}({fields})"

    def _eq(self: object, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    def _hash(self: object) -> int:
        return hash(_values(self))

    def _frozen(self: object, name: str, *value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def replace(obj: object, /, **changes: object) -> object:
        """dataclasses.replace: a new instance with `changes` over the fields' values."""
        values = {name: getattr(obj, name) for name in type(obj).__match_args__}  # type: ignore[attr-defined]
        return type(obj)(**{**values, **changes})

    # What a body may not set (namedtuple's own machinery), and what it sets that is not copied.
    _PROHIBITED = frozenset(
        ("__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
         "_make", "_replace", "_asdict", "_source")
    )  # fmt: skip
    _SPECIAL = frozenset(("__module__", "__name__", "__annotations__", "__qualname__"))

    class _NamedTupleMeta(type):
        def __new__(
            mcs, typename: str, bases: tuple[type, ...], namespace: dict[str, object]
        ) -> type:
            if bases != (_Base,):
                raise TypeError("carbonwrap.typing_lite.NamedTuple: one base, NamedTuple, only")
            names = list(namespace.get("__annotations__", {}))
            defaults = [namespace[name] for name in names if name in namespace]
            if any(name not in namespace for name in names[len(names) - len(defaults) :]):
                raise TypeError(f"{typename}: a field without a default follows one with one")
            made = collections.namedtuple(  # type: ignore[misc]
                typename, names, defaults=defaults, module=namespace["__module__"]
            )
            made.__annotations__ = dict(namespace.get("__annotations__", {}))
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"{typename}: cannot overwrite NamedTuple attribute {key}")
                if key not in _SPECIAL and key not in names:
                    setattr(made, key, value)
            made.__qualname__ = str(namespace.get("__qualname__", typename))
            return made

    _Base = type.__new__(_NamedTupleMeta, "NamedTuple", (), {})

    def NamedTuple(typename: str, fields: object = None, /) -> type:
        """The functional form is not supported: write the class form."""
        raise TypeError("carbonwrap.typing_lite.NamedTuple: use the class form")

    NamedTuple.__mro_entries__ = lambda bases: (_Base,)  # type: ignore[attr-defined]
