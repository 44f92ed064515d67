"""carbonwrap/typing_lite.py's NamedTuple makes the class typing.NamedTuple makes of the same
body (the run path's modules use it to start without importing typing)."""

from __future__ import annotations

import pickle
import textwrap
from types import ModuleType

import pytest

from carbonwrap import typing_lite

BODY = textwrap.dedent(
    '''
    from __future__ import annotations
    from {source} import NamedTuple

    LIMIT = 3

    class Reading(NamedTuple):
        """A reading."""

        time_s: float
        energy_j: float | None
        source: str = "rapl"
        notes: tuple[str, ...] = ()
        KIND = "sample"  # a class attribute, not a field

        @property
        def power_w(self) -> float:
            return (self.energy_j or 0.0) / self.time_s

        def later(self, seconds: float) -> Reading:
            return self._replace(time_s=self.time_s + seconds)

        @classmethod
        def empty(cls) -> Reading:
            return cls(0.0, None)
    '''
)


def build(source: str, name: str) -> ModuleType:
    module = ModuleType(name)
    exec(compile(BODY.format(source=source), name, "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def pair() -> tuple[type, type]:
    theirs = build("typing", "tl_typing").Reading
    ours = build("carbonwrap.typing_lite", "tl_ours").Reading
    import sys

    for cls in (theirs, ours):  # pickle finds the class by module and name
        module = ModuleType(cls.__module__)
        module.Reading = cls  # type: ignore[attr-defined]
        sys.modules[cls.__module__] = module
    return theirs, ours


def test_the_same_fields_defaults_and_attributes(pair: tuple[type, type]) -> None:
    theirs, ours = pair
    assert ours._fields == theirs._fields == ("time_s", "energy_j", "source", "notes")
    assert ours._field_defaults == theirs._field_defaults == {"source": "rapl", "notes": ()}
    # the annotations themselves: typing wraps each string in a ForwardRef; these stay strings
    assert list(ours.__annotations__) == list(theirs.__annotations__)
    assert ours.__doc__ == theirs.__doc__ == "A reading."
    assert ours.__name__ == theirs.__name__ == "Reading"
    assert ours.__qualname__ == theirs.__qualname__
    assert ours.__module__ == "tl_ours"
    assert ours.KIND == theirs.KIND == "sample"
    assert issubclass(ours, tuple)


def test_instances_behave_alike(pair: tuple[type, type]) -> None:
    theirs, ours = pair
    for cls in pair:
        reading = cls(2.0, 10.0)
        assert reading == (2.0, 10.0, "rapl", ())
        assert reading.power_w == 5.0
        assert reading.later(1.0).time_s == 3.0
        assert reading._asdict() == {"time_s": 2.0, "energy_j": 10.0, "source": "rapl", "notes": ()}
        assert cls.empty() == (0.0, None, "rapl", ())
        assert pickle.loads(pickle.dumps(reading)) == reading
        with pytest.raises(AttributeError):
            reading.time_s = 1.0  # type: ignore[misc]
    assert repr(ours(2.0, 10.0)) == repr(theirs(2.0, 10.0))


def test_what_typing_refuses_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default follows"):
        exec(
            "class Bad(NamedTuple):\n    a: int = 1\n    b: int\n",
            {"NamedTuple": typing_lite.NamedTuple, "__name__": "m"},
        )
    with pytest.raises(AttributeError, match="_replace"):
        exec(
            "class Bad(NamedTuple):\n    a: int\n    def _replace(self): pass\n",
            {"NamedTuple": typing_lite.NamedTuple, "__name__": "m"},
        )
    with pytest.raises(TypeError, match="class form"):
        typing_lite.NamedTuple("Point", [("x", int)])  # type: ignore[call-overload]
