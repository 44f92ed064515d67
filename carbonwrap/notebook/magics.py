"""`%%carbonwrap [options]` measures one cell; `%carbonwrap start [options]`, `stop`, `status`
measure what runs between them. Options as `run`'s: --tag KEY=VALUE, --region, --quiet, ….
The cell runs as %%time runs one: IPython's syntax transformed, in the user's namespace, its
last expression the cell's value; an exception ends the block and is raised as without it."""

import argparse
import ast
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from carbonwrap.errors import CarbonwrapError
from carbonwrap.notebook.view import CellView, in_kernel, report_text
from carbonwrap.run.track import Track

USAGE = (
    "%%carbonwrap [--tag KEY=VALUE] [--region CODE] [--quiet] … (a cell); "
    "%carbonwrap start [options] | stop | status (the rest of the notebook)"
)


CELL_FILE = "<carbonwrap cell>"  # in tracebacks


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, not argparse's exit
        raise UsageError(f"%carbonwrap: {message}; {USAGE}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="%%carbonwrap", add_help=False)
    add = parser.add_argument
    add("--tag", "--tags", dest="tags", action="append", default=[], metavar="KEY=VALUE")
    add("--name")
    add("--region")
    add("--location")
    add("--cloud")
    add("--log-dir")
    add("--pue", type=float)
    add("--interval", type=float)
    add("--log-interval", type=float)
    add("--intensity", type=float)
    add("--intensity-source")
    add("--json")
    add("-q", "--quiet", action="store_const", const=True)
    add("-v", "--verbose", action="store_const", const=True)
    return parser


def _tags(given: list[str]) -> dict[str, str] | None:
    tags: dict[str, str] = {}
    for item in given:
        for pair in item.split(","):
            key, equals, value = pair.partition("=")
            if not equals or not key.strip():
                raise UsageError(f"%carbonwrap: --tag {pair!r}: expected KEY=VALUE")
            tags[key.strip()] = value.strip()
    return tags or None


def track_of(words: list[str], name: str) -> Track:
    """A Track from the magic's options (a usage error for a bad one)."""
    options = _parser().parse_args(words)
    try:
        return Track(
            options.name or name,
            tags=_tags(options.tags),
            region=options.region,
            location=options.location,
            cloud=options.cloud,
            log_dir=options.log_dir,
            pue=options.pue,
            interval_s=options.interval,
            log_interval_s=options.log_interval,
            intensity_g_per_kwh=options.intensity,
            intensity_source=options.intensity_source,
            quiet=options.quiet,
            verbose=options.verbose,
            json_path=options.json,
        )
    except CarbonwrapError as exc:
        raise UsageError(str(exc)) from None


@magics_class
class CarbonwrapMagics(Magics):
    """The magics, and the block `%carbonwrap start` began (one at a time, as any block)."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.ip: Any = shell  # IPython types `shell` as optional; a registered magic has one
        self._running: tuple[Track, CellView] | None = None

    @line_cell_magic
    def carbonwrap(self, line: str, cell: str | None = None) -> Any:
        """Measure the energy and CO2e of a cell (%%carbonwrap) or of what runs between
        %carbonwrap start and %carbonwrap stop; %carbonwrap status shows the totals so far."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%carbonwrap: {exc}") from None
        if cell is not None:
            return self._cell(words, cell)
        action, rest = (words[0], words[1:]) if words else ("", [])
        if action == "start":
            self._start(rest)
        elif action == "stop" and not rest:
            self._stop()
        elif action == "status" and not rest:
            self._status()
        else:
            raise UsageError(f"%carbonwrap: {line.strip() or 'nothing'}?; {USAGE}")
        return None

    def _begin(self, track: Track) -> CellView:
        """The block started and its line shown; a usage error if it cannot start."""
        try:
            track.start()
        except CarbonwrapError as exc:
            raise UsageError(str(exc)) from None
        view = CellView(track.feed(), "display" if in_kernel(self.ip) else "line", sys.stderr)
        view.start()
        return view

    def _end(self, track: Track, view: CellView, error: BaseException | None) -> str:
        """The block ended, its report in place of the line; the report's text ("" if quiet)."""
        quiet, verbose = track.quiet, track.verbose
        summary = track.stop(error, report=False)
        view.stop(None if quiet else summary, verbose)
        return "" if quiet else report_text(summary, verbose)

    def _cell(self, words: list[str], cell: str) -> Any:
        track = track_of(words, f"cell {self.ip.execution_count}")
        code, last = self._compiled(cell)
        view = self._begin(track)
        error: BaseException | None = None
        try:
            exec(code, self.ip.user_ns)
            return eval(last, self.ip.user_ns) if last is not None else None
        except BaseException as exc:  # ended by it: logged, and raised as without the magic
            error = exc
            raise
        finally:
            self._end(track, view, error)

    def _compiled(self, cell: str) -> tuple[Any, Any]:
        """The cell as IPython would run it (its own syntax transformed), and its last
        expression apart, evaluated for the cell's value (Out[n]), as %%time does."""
        tree = self.ip.compile.ast_parse(self.ip.transform_cell(cell))
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = self.ip.compile(ast.Expression(tree.body.pop().value), CELL_FILE, "eval")
        return self.ip.compile(tree, CELL_FILE, "exec"), last

    def _start(self, words: list[str]) -> None:
        track = track_of(words, f"from cell {self.ip.execution_count}")
        view = self._begin(track)
        self._running = (track, view)

    def _stop(self) -> None:
        if self._running is None:
            raise UsageError("%carbonwrap stop: no block was started (%carbonwrap start)")
        track, view = self._running
        self._running = None
        text = self._end(track, view, None)
        if text and in_kernel(self.ip):  # the line above shows it too; and here, below
            print(text)

    def _status(self) -> None:
        if self._running is None:
            print("carbonwrap: no block is being measured (%carbonwrap start begins one)")
            return
        track, view = self._running
        print(view.line())
        print(f"  Log  {track.log_path}")

    def stop_running(self) -> None:
        """The extension is unloaded: a block still measuring ends (its end record)."""
        if self._running is not None:
            self._stop()
