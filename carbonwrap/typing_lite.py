"""`NamedTuple` and `Protocol` for the modules `carbonwrap run` loads before the command starts,
without importing `typing` (issue 19: typing and the `re`, `enum` and `warnings` it pulls in
cost more than the interpreter's own start-up).

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
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
else:
    Protocol = object

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
