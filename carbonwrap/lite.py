"""What the modules `carbonwrap run` loads before the command starts take from typing,
dataclasses, functools, contextlib and threading, without importing those (issue 19: typing
with the `re`, `enum` and `warnings` it pulls in, dataclasses with `inspect`, `ast`, `dis` and
`tokenize`, and collections, functools, contextlib and threading, which import one another,
each cost about half the interpreter's own start-up or more). Type checkers see the standard
library's own names (the `TYPE_CHECKING` branch); tests/unit/test_lite.py holds these to them.

`NamedTuple`: a class written

    from carbonwrap.lite import NamedTuple

    class Mount(NamedTuple):
        mount_point: str
        root: str = "/"

is what typing would make of it: a tuple subclass over the annotated names in order, the
values in the body as defaults, `_make`, `_replace`, `_asdict`, `_fields`, `_field_defaults`,
the body's methods, properties, docstring and other attributes. Its `__new__` takes the fields
by position or name, as collections.namedtuple's, from one compiled template per field count
whose parameters are renamed (compiling each class's own was two thirds of its cost). Generic
named tuples and multiple inheritance are not supported (nothing here needs them).

`dataclass` and `field`: `@dataclass` and `@dataclass(frozen=True)` give what dataclasses
would: an `__init__` over the annotated names in order (a value in the body is the default;
`field(default_factory=f)` calls `f` for each instance), `__repr__`, `__eq__`,
`__match_args__`, and for a frozen class `__setattr__`/`__delattr__` that raise
`FrozenInstanceError` (an AttributeError) and `__hash__`; `replace` is dataclasses.replace.
The first instance is made by a general `__init__`, the second compiles the generated one. No
other options, no inheritance between such classes, no `ClassVar` or `InitVar`.

`Protocol` is `object` at run time: a protocol class is a plain class with the methods' stubs,
used by nothing but annotations (no `isinstance` against it). The other names of typing
(`Any`, `TextIO`, `TypeVar`, …) and collections.abc are imported by the run path's modules
under `if TYPE_CHECKING:` only, their annotations kept as strings (`from __future__ import
annotations`).

`cache` (functools.cache for hashable positional arguments), `suppress` and `nullcontext`
(contextlib's), `Lock` (threading.Lock is `_thread.allocate_lock`) and `Thread` (a daemon
thread on `_thread`: start, join with a timeout, is_alive; a traceback printed as threading
prints it).
"""

from __future__ import annotations

import _thread
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import nullcontext as nullcontext
    from contextlib import suppress as suppress
    from dataclasses import FrozenInstanceError as FrozenInstanceError
    from dataclasses import dataclass as dataclass
    from dataclasses import field as field
    from dataclasses import replace as replace
    from functools import cache as cache
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
else:
    from _collections import _tuplegetter  # C: collections.namedtuple's field accessor

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
        cls.__init__ = _first_init(cls, source, scope, frozen)  # type: ignore[misc]
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

    def _first_init(cls: type, source: str, scope: dict[str, object], frozen: bool) -> object:
        """The class's first instance is made by a general __init__ that binds its arguments
        as the generated one would (a Python function of the same signature: `_bind`); only a
        second instance compiles the generated one (as dataclasses makes it) and installs it.
        Compiling is most of the cost of making such a class (~250 µs for RunSummary's 37
        fields): a run makes one RunSummary, a report one per log."""

        def first(self: object, *args: object, **kwargs: object) -> None:
            exec(source, scope)  # later instances: the compiled one, positional or keyword
            compiled = scope["__init__"]
            compiled.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
            cls.__init__ = compiled  # type: ignore[misc]
            compiled(self, *args, **kwargs)  # type: ignore[operator]

        def general(self: object, *args: object, **kwargs: object) -> None:
            cls.__init__ = first  # type: ignore[misc]
            assign = object.__setattr__ if frozen else setattr
            for name, value in _bind(cls, scope, args, kwargs):
                assign(self, name, value)

        general.__qualname__ = f"{cls.__qualname__}.__init__"
        return general

    def _bind(
        cls: type, scope: dict[str, object], args: tuple[object, ...], kwargs: dict[str, object]
    ) -> list[tuple[str, object]]:
        """(field, value) for each field, from the arguments as __init__ takes them: the
        same values, the same TypeError for a wrong call."""
        names = list(vars(cls).get("__annotations__", {}))
        where = f"{cls.__qualname__}.__init__()"
        if len(args) > len(names):
            raise TypeError(
                f"{where} takes {len(names) + 1} positional arguments but {len(args) + 1} "
                "were given"
            )
        given = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{where} got an unexpected keyword argument {name!r}")
            if name in given:
                raise TypeError(f"{where} got multiple values for argument {name!r}")
            given[name] = value
        bound = []
        for name in names:
            if name in given:
                value = given[name]
            elif f"_make_{name}" in scope:
                value = scope[f"_make_{name}"]()  # type: ignore[operator]
            elif f"_default_{name}" in scope:
                value = scope[f"_default_{name}"]
            else:
                missing = [
                    n for n in names
                    if n not in given and f"_default_{n}" not in scope and f"_make_{n}" not in scope
                ]  # fmt: skip
                raise TypeError(f"{where} missing required argument(s): {', '.join(missing)}")
            bound.append((name, value))
        return bound

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

    class _Tuple(tuple):  # type: ignore[type-arg]
        """What collections.namedtuple gives each class, written once for all of them."""

        __slots__ = ()
        _fields: tuple[str, ...] = ()

        @classmethod
        def _make(cls, iterable: object) -> _Tuple:
            made = tuple.__new__(cls, iterable)  # type: ignore[arg-type]
            if len(made) != len(cls._fields):
                raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(made)}")
            return made

        def _replace(self, /, **changes: object) -> _Tuple:
            made = self._make(map(changes.pop, self._fields, self))
            if changes:
                raise ValueError(f"Got unexpected field names: {list(changes)!r}")
            return made

        def __repr__(self) -> str:
            shown = ", ".join(f"{n}={v!r}" for n, v in zip(self._fields, self, strict=True))
            return f"{self.__class__.__name__}({shown})"

        def _asdict(self) -> dict[str, object]:
            return dict(zip(self._fields, self, strict=True))

        def __getnewargs__(self) -> tuple[object, ...]:
            return tuple(self)

    class _NamedTupleMeta(type):
        def __new__(
            mcs, typename: str, bases: tuple[type, ...], namespace: dict[str, object]
        ) -> type:
            if bases != (_Base,):
                raise TypeError("carbonwrap.lite.NamedTuple: one base, NamedTuple, only")
            annotations = dict(namespace.get("__annotations__", {}))  # type: ignore[call-overload]
            names = tuple(annotations)
            defaults = tuple(namespace[name] for name in names if name in namespace)
            if any(name not in namespace for name in names[len(names) - len(defaults) :]):
                raise TypeError(f"{typename}: a field without a default follows one with one")
            for key in namespace:
                if key in _PROHIBITED:
                    raise AttributeError(f"{typename}: cannot overwrite NamedTuple attribute {key}")
            body = {k: v for k, v in namespace.items() if k not in _SPECIAL and k not in names}
            new = _tuple_new(names, defaults)
            new.__qualname__ = f"{namespace.get('__qualname__', typename)}.__new__"
            made: dict[str, object] = {
                "__slots__": (),
                "__module__": namespace["__module__"],
                "__qualname__": namespace.get("__qualname__", typename),
                "__annotations__": annotations,
                "__doc__": namespace.get("__doc__") or f"{typename}({', '.join(names)})",
                "__new__": new,
                "__match_args__": names,
                "_fields": names,
                "_field_defaults": dict(
                    zip(names[len(names) - len(defaults) :], defaults, strict=True)
                ),
            }
            for index, name in enumerate(names):
                made[name] = _tuplegetter(index, f"Alias for field number {index}")
            made.update(body)
            return type(typename, (_Tuple,), made)

    _Base = type.__new__(_NamedTupleMeta, "NamedTuple", (), {})

    # collections.namedtuple compiles each class's __new__ from source (a lambda taking the
    # fields by name); compiling is most of the cost of making the class (~30 µs). The same
    # function, from one template per number of fields with its parameters renamed: written
    # out here up to 10 fields (loaded with this module's bytecode, nothing compiled at run
    # time: the run's classes have 2 to 10 but RunOptions, 27), compiled once beyond.
    _t = tuple.__new__  # the templates' one global (also in _GLOBALS, where they run)
    _TEMPLATES: dict[int, object] = {
        n: f.__code__
        for n, f in {
            1: lambda _c, a: _t(_c, (a,)),
            2: lambda _c, a, b: _t(_c, (a, b)),
            3: lambda _c, a, b, c: _t(_c, (a, b, c)),
            4: lambda _c, a, b, c, d: _t(_c, (a, b, c, d)),
            5: lambda _c, a, b, c, d, e: _t(_c, (a, b, c, d, e)),
            6: lambda _c, a, b, c, d, e, f: _t(_c, (a, b, c, d, e, f)),
            7: lambda _c, a, b, c, d, e, f, g: _t(_c, (a, b, c, d, e, f, g)),
            8: lambda _c, a, b, c, d, e, f, g, h: _t(_c, (a, b, c, d, e, f, g, h)),
            9: lambda _c, a, b, c, d, e, f, g, h, i: _t(_c, (a, b, c, d, e, f, g, h, i)),
            10: lambda _c, a, b, c, d, e, f, g, h, i, j: _t(_c, (a, b, c, d, e, f, g, h, i, j)),
        }.items()
    }
    _GLOBALS = {"_t": _t, "__builtins__": {}}
    _Function = type(lambda: None)  # types.FunctionType

    def _tuple_new(names: tuple[str, ...], defaults: tuple[object, ...]) -> object:
        template = _TEMPLATES.get(len(names))
        if template is None:
            slots = ", ".join(f"_{i}" for i in range(len(names)))
            one = "," if len(names) == 1 else ""
            made = eval(f"lambda _c, {slots}: _t(_c, ({slots}{one}))", _GLOBALS)
            template = _TEMPLATES[len(names)] = made.__code__
        code = template.replace(co_varnames=("_c", *names), co_name="__new__")  # type: ignore[attr-defined]
        return _Function(code, _GLOBALS, "__new__", defaults or None)

    def NamedTuple(typename: str, fields: object = None, /) -> type:
        """The functional form is not supported: write the class form."""
        raise TypeError("carbonwrap.lite.NamedTuple: use the class form")

    NamedTuple.__mro_entries__ = lambda bases: (_Base,)  # type: ignore[attr-defined]


# Also without collections, functools, contextlib and threading, which import one another and
# together cost the run's start-up about a third of the interpreter's (issue 19). The same
# behaviour, for what the run path uses; type checkers see the standard library's own.
if not TYPE_CHECKING:

    def cache(function: object) -> object:
        """functools.cache for functions of hashable positional arguments (the shipped tables,
        read once per process): the first answer for each, kept."""
        answers: dict[tuple[object, ...], object] = {}
        counts = [0, 0]  # hits, misses

        def cached(*args: object) -> object:
            try:
                answer = answers[args]
            except KeyError:
                counts[1] += 1
                answer = answers[args] = function(*args)  # type: ignore[operator]
                return answer
            counts[0] += 1
            return answer

        def cache_info() -> _CacheInfo:
            return _CacheInfo(counts[0], counts[1], None, len(answers))

        cached.__wrapped__ = function  # type: ignore[attr-defined]
        cached.__name__ = function.__name__  # type: ignore[attr-defined]
        cached.__doc__ = function.__doc__
        cached.cache_clear = answers.clear  # type: ignore[attr-defined]
        cached.cache_info = cache_info  # type: ignore[attr-defined]
        return cached

    class _CacheInfo(NamedTuple):
        """functools' CacheInfo."""

        hits: int
        misses: int
        maxsize: int | None
        currsize: int

    class suppress:  # contextlib's name
        """contextlib.suppress: the block's exception ends it quietly if it is one of these."""

        __slots__ = ("_kinds",)

        def __init__(self, *kinds: type[BaseException]) -> None:
            self._kinds = kinds

        def __enter__(self) -> None:
            return None

        def __exit__(self, kind: object, value: object, traceback: object) -> bool:
            return kind is not None and issubclass(kind, self._kinds)  # type: ignore[arg-type]

    class nullcontext:  # contextlib's name
        """contextlib.nullcontext(): a block that nothing wraps."""

        __slots__ = ()

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None


Lock = _thread.allocate_lock  # threading.Lock is this very function

# math's, for the run path without loading math (a shared library: ~0.15 ms of every run's
# start-up on the development VM, issue 19).
INF = float("inf")


def isfinite(number: float) -> bool:
    """math.isfinite for ints and floats: NaN and ±inf are the numbers whose difference with
    themselves is not 0 (an int too large for a float is finite, not an OverflowError)."""
    return number - number == 0


def isinf(number: float) -> bool:
    """math.isinf."""
    return number in (INF, -INF)


class Thread:
    """threading.Thread(target=…, name=…, daemon=True) for the run's own threads, on `_thread`
    (threading imports functools, collections and more): start, join (with a timeout),
    is_alive. A thread that raises has its traceback printed as threading prints it."""

    __slots__ = ("_done", "_started", "_target", "name")

    def __init__(self, target: Callable[[], object], name: str) -> None:
        self.name = name
        self._target = target
        self._done = _thread.allocate_lock()  # held while the thread runs
        self._started = False

    def start(self) -> None:
        if self._started:
            raise RuntimeError("threads can only be started once")
        self._done.acquire()
        self._started = True
        try:
            _thread.start_new_thread(self._run, ())
        except BaseException:
            self._done.release()
            raise

    def _run(self) -> None:
        try:
            self.run_here()
        finally:
            self._done.release()

    def run_here(self) -> None:
        """The target, in the calling thread, what it raises said as its own thread would say
        it (a thread that turned out not to be needed: its work done where it is)."""
        try:
            self._target()
        except SystemExit:
            pass
        except BaseException as exc:  # what threading.excepthook prints, then the thread ends
            import traceback

            with suppress(Exception):
                sys.stderr.write(f"Exception in thread {self.name}:\n")
                traceback.print_exception(exc, file=sys.stderr)

    def join(self, timeout: float | None = None) -> None:
        """Until the thread has ended, or `timeout` seconds."""
        if not self._started:
            raise RuntimeError("cannot join thread before it is started")
        if self._done.acquire(True, -1 if timeout is None else max(timeout, 0.0)):
            self._done.release()

    def is_alive(self) -> bool:
        return self._started and self._done.locked()
