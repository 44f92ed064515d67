"""`carbonwrap.track(...)`: a block of Python measured as a run of its own — a context manager,
or a decorator under which each call is one block. Settings resolve as for `run` (keyword >
CARBONWRAP_* > project file > user file > default); one block at a time per process."""

import functools
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, TextIO, TypeVar

from carbonwrap.errors import CarbonwrapError
from carbonwrap.runlog.summary import RunSummary

F = TypeVar("F", bound=Callable[..., Any])

# Keyword → setting, for those given as numbers or paths (each checked by its setting's own
# parser, as a variable's text is); tags, quiet and verbose are taken as they are.
_CHECKED = {
    "interval_s": "interval",
    "log_interval_s": "log_interval",
    "log_dir": "log_dir",
    "pue": "pue",
    "intensity_source": "intensity_source",
    "intensity_g_per_kwh": "intensity",
}

# The block being measured in this process, if any: blocks measure the whole process (every
# thread), so two at once, or one inside another, would count the same CPU seconds twice.
_active: "Track | None" = None
_active_lock = threading.Lock()


class TrackError(CarbonwrapError, RuntimeError):
    """A block that cannot be measured as asked (another one is measuring this process)."""


class Track:
    """One `carbonwrap.track(...)`: `with` it for a block, or decorate a function with it (each
    call is a block). `summary()`: the totals so far (while the block runs) or of the last
    block. Not reentrant: a block inside another, or beside one in another thread, is refused
    (TrackError)."""

    def __init__(
        self,
        name: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        region: str | None = None,
        location: str | None = None,
        cloud: str | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        pue: float | None = None,
        interval_s: float | None = None,
        log_interval_s: float | None = None,
        intensity_source: str | None = None,
        intensity_g_per_kwh: float | None = None,
        quiet: bool | None = None,
        verbose: bool | None = None,
        json_path: str | None = None,
        environ: Mapping[str, str] | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        """Keywords left None come from the settings (`carbonwrap config` shows them);
        `environ` and `stderr` default to the process's own (read at each block's start)."""
        self.name = name
        self._given: dict[str, Any] = {
            "tags": dict(tags) if tags is not None else None,
            "quiet": quiet,
            "verbose": verbose,
        }
        for keyword, value in (
            ("interval_s", interval_s),
            ("log_interval_s", log_interval_s),
            ("log_dir", os.fspath(log_dir) if log_dir is not None else None),
            ("pue", pue),
            ("intensity_source", intensity_source),
            ("intensity_g_per_kwh", intensity_g_per_kwh),
        ):
            self._given[_CHECKED[keyword]] = _checked(keyword, value)
        self._where = (region, location, cloud)
        self._json_path = json_path
        self._environ = environ
        self._stderr = stderr
        self._block: Any = None  # run/block.Block, imported with the first block
        self._last: RunSummary | None = None
        self.place = "block"  # the name of a `with` block without one (`track` sets it)
        self._label = name or self.place

    def __enter__(self) -> "Track":
        self.start()
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        self.stop(error)  # the exception, if any, goes on

    def __call__(self, function: F) -> F:
        """As a decorator: each call of `function` is one block, named after it (a call
        inside another, recursion included, is refused as any nested block is)."""
        name = self.name or f"{function.__module__}.{function.__qualname__}"

        @functools.wraps(function)
        def measured(*args: Any, **kwargs: Any) -> Any:
            self.start(name)
            try:
                result = function(*args, **kwargs)
            except BaseException as error:
                self.stop(error)
                raise
            self.stop()
            return result

        return measured  # type: ignore[return-value]

    def start(self, name: str | None = None) -> None:
        """Measure from now on (a block named `name`, else this track's name): the log's start
        record is written before this returns."""
        global _active
        with _active_lock:
            if _active is not None:
                raise TrackError(
                    f"carbonwrap.track: block {_active.label!r} is already measuring this "
                    f"process (its log: {_active.log_path}); a block measures every thread of "
                    "the process, so one inside or beside it would count the same CPU twice: "
                    "end it first, or measure the outer block only"
                )
            _active = self
        try:
            self._label = name or self.name or self.place
            self._block = self._open()
        except BaseException:
            with _active_lock:
                _active = None
            raise

    def stop(self, error: BaseException | None = None, report: bool = True) -> RunSummary:
        """The block is over (`error`: the exception that ended it): the end record, the
        report on stderr (unless quiet, or `report` is False: the caller shows it); returns
        the final summary. Stopping twice returns it again."""
        global _active
        block = self._block
        if block is None:
            if self._last is None:
                raise TrackError("carbonwrap.track: stop() without a block started")
            return self._last
        try:
            self._last = block.end(error, report)
        finally:
            self._block = None
            with _active_lock:
                if _active is self:
                    _active = None
        return self._last

    @property
    def running(self) -> bool:
        return self._block is not None

    @property
    def quiet(self) -> bool:
        """The block being measured was asked for no report (keyword or settings)."""
        return self._block is not None and bool(self._block.options.quiet)

    @property
    def verbose(self) -> bool:
        """The block being measured was asked for the whole report."""
        return self._block is not None and bool(self._block.options.verbose)

    @property
    def label(self) -> str:
        """The name of the block being measured, or of the last one."""
        return self._label

    @property
    def log_path(self) -> str:
        if self._block is not None:
            return str(self._block.log_path)
        return self._last.log_path or "" if self._last is not None else ""

    def summary(self) -> RunSummary:
        """The totals so far: duration, CPU seconds, energy (`energy_j`, per component in
        `components`), CO2e (`co2e_g`), the log; after the block, its final summary."""
        if self._block is not None:
            return self._block.summary()  # type: ignore[no-any-return]
        return self._last if self._last is not None else RunSummary()

    def feed(self) -> Any:
        """The live state of the block being measured (`live/feed.LiveFeed`)."""
        if self._block is None:
            raise TrackError("carbonwrap.track: no block is being measured")
        return self._block.feed()

    def _open(self) -> Any:
        """The block's options from the settings and the keywords, then the block, started."""
        from carbonwrap.measure.leafjoin import new_run_id
        from carbonwrap.run.block import Block
        from carbonwrap.run.options import RunOptions
        from carbonwrap.settings.resolve import check_run_settings, load_config

        environ = os.environ if self._environ is None else self._environ
        config = load_config(environ)
        flags = {key: value for key, value in self._given.items() if value is not None}
        resolved = config.resolve(flags, environ)
        check_run_settings(resolved)
        options = RunOptions.from_settings(
            resolved,
            (self.label,),
            self._where,
            json_path=self._json_path,
            run_id=new_run_id(),
            config=config,
        )
        block = Block(options, environ, self._stderr or sys.stderr)
        block.start()
        return block


def _checked(keyword: str, value: Any) -> Any:
    """A keyword's value as its setting takes it; CarbonwrapError naming the keyword if bad."""
    if value is None:
        return None
    from carbonwrap.settings.catalog import BY_KEY

    try:
        return BY_KEY[_CHECKED[keyword]].parse(str(value))
    except ValueError as exc:
        raise CarbonwrapError(f"carbonwrap.track({keyword}={value!r}): {exc}") from None


def track(name: Any = None, **keywords: Any) -> Any:
    """`with carbonwrap.track(tags={"exp": "a"}) as t: ...`, `@carbonwrap.track(...)`, or
    `@carbonwrap.track` bare: see `Track`."""
    if callable(name):
        return Track(**keywords)(name)
    made = Track(name, **keywords)
    # A `with` block without a name is named after where it stands ("train.py:42"); as a
    # decorator, after the function.
    caller = sys._getframe(1)
    made.place = f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"
    return made
