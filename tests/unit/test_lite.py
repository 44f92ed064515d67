"""carbonwrap/lite.py's NamedTuple makes the class typing.NamedTuple makes of the same
body (the run path's modules use it to start without importing typing)."""

from __future__ import annotations

import math
import pickle
import sys
import textwrap
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonwrap import lite

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
    ours = build("carbonwrap.lite", "tl_ours").Reading
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
        assert cls(energy_j=1.0, time_s=3.0, notes=("n",)) == (3.0, 1.0, "rapl", ("n",))
        assert cls(1.0, 2.0, source="x") == (1.0, 2.0, "x", ())
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'energy_j'"):
            cls(1.0)
        with pytest.raises(TypeError, match="unexpected keyword argument 'other'"):
            cls(1.0, 2.0, other=3)
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
            {"NamedTuple": lite.NamedTuple, "__name__": "m"},
        )
    with pytest.raises(AttributeError, match="_replace"):
        exec(
            "class Bad(NamedTuple):\n    a: int\n    def _replace(self): pass\n",
            {"NamedTuple": lite.NamedTuple, "__name__": "m"},
        )
    with pytest.raises(TypeError, match="class form"):
        lite.NamedTuple("Point", [("x", int)])  # type: ignore[call-overload]


DATA_BODY = textwrap.dedent(
    '''
    from __future__ import annotations
    from {source} import dataclass, field

    @dataclass
    class Summary:
        """A summary."""

        run_id: str
        energy_j: float = 0.0
        notes: list[str] = field(default_factory=list)
        tags: dict[str, str] = field(default_factory=dict)

        @property
        def noted(self) -> bool:
            return bool(self.notes)

    @dataclass(frozen=True)
    class Info:
        index: int
        name: str = ""
    '''
)


@pytest.fixture(scope="module")
def data_pair() -> tuple[ModuleType, ModuleType]:
    def build_data(source: str, name: str) -> ModuleType:
        module = ModuleType(name)
        sys.modules[name] = module  # dataclasses looks its module up
        exec(compile(DATA_BODY.format(source=source), name, "exec"), module.__dict__)
        return module

    return build_data("dataclasses", "dc_theirs"), build_data("carbonwrap.lite", "dc_ours")


def test_a_dataclass_is_built_as_dataclasses_builds_it(
    data_pair: tuple[ModuleType, ModuleType],
) -> None:
    import inspect

    theirs, ours = data_pair
    for name, args in (("Summary", ("r",)), ("Info", (1,))):
        mine, real = getattr(ours, name), getattr(theirs, name)
        mine(*args), mine(*args)  # a second instance installs the compiled __init__
        ours_params = inspect.signature(mine).parameters
        their_params = inspect.signature(real).parameters
        assert list(ours_params) == list(their_params)  # names in order, positional or keyword
        for param, other in zip(ours_params.values(), their_params.values(), strict=True):
            assert param.kind == other.kind
            assert (param.default is param.empty) == (other.default is other.empty)
        assert mine.__match_args__ == real.__match_args__
        assert mine.__doc__ == real.__doc__ or real.__doc__.startswith(name)
    a, b = ours.Summary("r1"), theirs.Summary("r1")
    assert repr(a).replace("dc_ours.", "") == repr(b).replace("dc_theirs.", "")
    assert a.notes == [] and a.notes is not ours.Summary("r2").notes  # a fresh list each
    assert not hasattr(ours.Summary, "notes") and not hasattr(theirs.Summary, "notes")
    assert ours.Summary.energy_j == theirs.Summary.energy_j == 0.0  # a plain default stays
    assert ours.Summary("r", 1.0, ["n"]) == ours.Summary(run_id="r", energy_j=1.0, notes=["n"])
    assert ours.Summary("r") != ours.Summary("s")
    assert ours.Summary("r").__eq__(b) is NotImplemented
    assert ours.Summary("r", notes=["x"]).noted
    with pytest.raises(TypeError):
        hash(ours.Summary("r"))  # eq without frozen: unhashable, as dataclasses makes it


def test_a_frozen_dataclass_refuses_changes_and_hashes(
    data_pair: tuple[ModuleType, ModuleType],
) -> None:
    import dataclasses

    theirs, ours = data_pair
    for module, refused in (
        (ours, lite.FrozenInstanceError),
        (theirs, dataclasses.FrozenInstanceError),
    ):
        info = module.Info(1, "gpu")
        with pytest.raises(refused):
            info.index = 2
        with pytest.raises(AttributeError):
            del info.name
        assert hash(info) == hash(module.Info(1, "gpu"))
        assert {info, module.Info(1, "gpu")} == {info}
    assert lite.replace(ours.Info(1, "gpu"), index=3) == ours.Info(3, "gpu")


def test_what_dataclasses_refuses_is_refused() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default"):
        lite.dataclass(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))


def test_cache_keeps_the_first_answer_per_arguments_as_functools_does() -> None:
    calls: list[tuple[object, ...]] = []

    @lite.cache
    def table(name: str, rows: int = 0) -> list[str]:
        calls.append((name, rows))
        return [name] * rows

    assert table("a", 2) == ["a", "a"] and table("a", 2) is table("a", 2)
    assert table("b") == [] and calls == [("a", 2), ("b", 0)]
    assert table.cache_info().currsize == 2 and table.cache_info().hits == 2  # type: ignore[attr-defined]
    assert table.__name__ == "table" and table.__wrapped__("c", 1) == ["c"]  # type: ignore[attr-defined]


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**60), 2**60)))
def test_isfinite_and_isinf_answer_as_math_does(number: float) -> None:
    assert lite.isfinite(number) is math.isfinite(number)
    assert lite.isinf(number) is math.isinf(number)
    assert math.inf == lite.INF


def test_an_int_too_large_for_a_float_is_finite() -> None:  # math raises OverflowError
    assert lite.isfinite(10**400) and not lite.isinf(10**400)


def test_suppress_and_nullcontext_as_contextlib() -> None:
    with lite.suppress(KeyError, OSError):
        raise FileNotFoundError("gone")  # an OSError
    with pytest.raises(ValueError), lite.suppress(KeyError):
        raise ValueError("not suppressed")
    with lite.suppress():
        pass
    with lite.nullcontext() as nothing:
        assert nothing is None


def test_a_thread_runs_joins_and_reports_what_it_raised(capfd: pytest.CaptureFixture[str]) -> None:
    import time

    ran: list[str] = []
    gate = lite.Lock()
    gate.acquire()
    worker = lite.Thread(target=lambda: (gate.acquire(), ran.append("done")), name="cw-test")
    assert not worker.is_alive()
    with pytest.raises(RuntimeError):
        worker.join()
    worker.start()
    assert worker.is_alive()
    worker.join(0.05)  # times out: the gate is shut
    assert worker.is_alive() and ran == []
    gate.release()
    worker.join()
    assert not worker.is_alive() and ran == ["done"]
    with pytest.raises(RuntimeError):
        worker.start()

    def fail() -> None:
        raise ZeroDivisionError("in the thread")

    failing = lite.Thread(target=fail, name="cw-failing")
    failing.start()
    failing.join()
    time.sleep(0.01)
    err = capfd.readouterr().err
    assert "Exception in thread cw-failing:" in err and "ZeroDivisionError: in the thread" in err


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), (("r",), {}), (("r", 2.0), {}), (("r",), {"tags": {"a": "b"}}),
     ((), {"run_id": "r", "notes": ["n"]}), (("r", 1.0, ["x"], {}, 5), {}),
     (("r",), {"run_id": "s"}), (("r",), {"other": 1}), (("r",), {"energy_j": 3.0})],
)  # fmt: skip
def test_the_first_instance_binds_its_arguments_as_the_compiled_init(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    """A class's first instance comes from the general __init__ (no compiling at start-up),
    later ones from the compiled one: each call binds alike, or fails alike."""
    outcomes = []
    for _ in range(2):
        module = ModuleType("dc_fresh")
        sys.modules["dc_fresh"] = module
        exec(
            compile(DATA_BODY.format(source="carbonwrap.lite"), "dc_fresh", "exec"), module.__dict__
        )
        summary = module.Summary
        for _instance in range(2):  # the general __init__, then the compiled one
            try:
                made = summary(*args, **kwargs)
                outcomes.append(("made", made.run_id, made.energy_j, made.notes, made.tags))
            except TypeError:
                outcomes.append(("TypeError",))
    assert len(set(map(repr, outcomes))) == 1, outcomes
