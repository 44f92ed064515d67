"""--budget: a CO2e or energy limit for a run. Checked at every reading of the sampler (the
actual total, every --interval) and against every prediction; on exceeding it, warn once or
stop the command: SIGTERM to every process of its tree, SIGKILL to what is left after a grace
period. Imported only with --budget.
"""

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from carbonwrap.measure.sampler import Totals
from carbonwrap.quantities import Budget
from carbonwrap.render import units
from carbonwrap.runlog import records
from carbonwrap.settings.catalog import BY_KEY

__all__ = ["BudgetWatch", "Stopper"]

DEFAULT_GRACE_S: float = BY_KEY["budget_grace"].default
# Never act on a prediction made from too little: at least this many report intervals after
# the warm-up, this much of the work done, and the low end of its ~95 % range over the limit.
MIN_INTERVALS = 3
MIN_FRACTION = 0.10
KILLED_WAIT_S = 2.0  # after SIGKILL, for the kernel to take the processes down
PIN_AT_ONCE = 256  # pidfds open at a time while signalling (well below the usual 1024 limit)


def confident(prediction: dict[str, Any], quantity: str) -> bool:
    """Whether a prediction rests on enough to act on (see MIN_INTERVALS, MIN_FRACTION)."""
    intervals = prediction.get("intervals")
    fraction = prediction.get("fraction")
    margin = prediction.get("co2e_margin_g" if quantity == "co2e" else "energy_margin_j")
    return (
        isinstance(intervals, int)
        and intervals >= MIN_INTERVALS
        and isinstance(fraction, (int, float))
        and fraction >= MIN_FRACTION
        and isinstance(margin, (int, float))
    )


class Stopper:
    """Stops the command: SIGTERM to the child and every other process of its tree now,
    SIGKILL to whatever of the tree is left `grace_s` later; never to a PID that has passed to
    another process since it was listed (`_signal_pinned`)."""

    def __init__(
        self,
        child_pid: int,
        send_child: Callable[[int], bool],
        tree: Callable[[], list[int]],
        grace_s: float,
        on_kill: Callable[[list[int]], None],
    ) -> None:
        self._child_pid = child_pid
        self._send_child = send_child  # False once the child has been reaped
        self._tree = tree
        self.grace_s = grace_s
        self._on_kill = on_kill
        self._lock = threading.Lock()
        self._deadline_s: float | None = None
        self._timer: threading.Timer | None = None
        self._killed = False

    @property
    def started(self) -> bool:
        return self._deadline_s is not None

    def stop(self) -> None:
        with self._lock:
            if self._deadline_s is not None:
                return
            self._deadline_s = time.monotonic() + self.grace_s
            self._timer = threading.Timer(self.grace_s, self.kill)
            self._timer.daemon = True
        self._signal(signal.SIGTERM)
        self._timer.start()

    def _signal(self, signum: int) -> list[int]:
        """`signum` to the child (unless reaped) and every other process in the tree."""
        hit = [self._child_pid] if self._send_child(signum) else []
        own = os.getpid()
        listed = [
            p for p in dict.fromkeys(self._tree()) if p > 1 and p not in (own, self._child_pid)
        ]
        for first in range(0, len(listed), PIN_AT_ONCE):
            hit += _signal_pinned(listed[first : first + PIN_AT_ONCE], signum, self._tree)
        return hit

    def kill(self) -> None:
        """SIGKILL to what is left of the tree (once); the timer's, or `settle`'s."""
        with self._lock:
            if self._killed:
                return
            self._killed = True
        hit = self._signal(signal.SIGKILL)
        if hit:
            self._on_kill(hit)

    def settle(self, poll_s: float = 0.05) -> None:
        """After the child has ended (stopping or not): if a stop began, wait for the rest of
        the tree until the grace period is over, then SIGKILL what is left. Reaps the orphans
        that exit meanwhile (in process-tree mode carbonwrap is their subreaper; a leaf's orphans
        are init's)."""
        if self._deadline_s is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        if self._wait_for_tree(self._deadline_s, poll_s):
            return
        self.kill()
        self._wait_for_tree(time.monotonic() + KILLED_WAIT_S, poll_s)  # dying takes a moment

    def _wait_for_tree(self, deadline_s: float, poll_s: float) -> bool:
        """Until the tree is empty (True) or the deadline (False), reaping as it goes."""
        while True:
            _reap()
            if not [pid for pid in self._tree() if pid != os.getpid()]:
                return True
            if time.monotonic() >= deadline_s:
                return False
            time.sleep(poll_s)


def _signal_pinned(pids: list[int], signum: int, tree: Callable[[], list[int]]) -> list[int]:
    """`signum` to each of `pids` that is still the tree's process; the ones it reached.

    The tree's processes are not carbonwrap's children (nothing keeps their PIDs from being
    reused once they end), and a listed PID may belong to another process by the time a signal
    goes out. So each PID is pinned first with a pidfd (pidfd_open(2), Linux 5.3), which refers
    to the process holding the PID then, and the tree is listed again: a PID still listed was
    the tree's after the pin was taken, so the pidfd is that process, and pidfd_send_signal
    reaches it or, once it has ended, nothing (ESRCH). A start-time check alone (what the
    listing does in process-tree mode) leaves a gap between the check and kill(2); a pidfd
    alone pins whatever holds the PID, a stranger too. Without pidfds (older kernels), kill(2)
    right after the second listing: the gap is microseconds."""
    pinned: dict[int, int | None] = {}
    try:
        for pid in pids:
            try:
                pinned[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                continue  # ended already
            except OSError:  # ENOSYS before Linux 5.3; EMFILE
                pinned[pid] = None
        still = set(tree())
        hit = []
        for pid, fd in pinned.items():
            if pid not in still:
                continue  # ended, or left the tree, since the first listing
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if fd is None:
                    os.kill(pid, signum)
                else:
                    signal.pidfd_send_signal(fd, signum)
                hit.append(pid)
        return hit
    finally:
        for fd in pinned.values():
            if fd is not None:
                os.close(fd)


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


class BudgetWatch:
    """Watches the sampler's readings (`on_reading`) and the predictions (`on_prediction`):
    the first time the actual or (confidently) the predicted total exceeds the budget, logs a
    `budget` record and says so on stderr; with --on-exceed stop, stops the command once."""

    def __init__(
        self,
        budget: Budget,
        on_exceed: str,
        record: Callable[[dict[str, Any]], None],
        co2e_at_g: Callable[[float], float],
        say: Callable[[str], None],
        elapsed_s: Callable[[], float],
        child: tuple[int, Callable[[int], bool], Callable[[], list[int]]],
        grace_s: float = DEFAULT_GRACE_S,
    ) -> None:
        """`co2e_at_g`: the run's CO2e (g) once this attributed energy (J) is counted
        (`SoFar.co2e_at_g`); `child`: its pid, a function that signals it (False once reaped)
        and one that lists the tree's processes now."""
        self.budget = budget
        self.on_exceed = on_exceed
        self._record = record
        self._co2e_at_g = co2e_at_g
        self._say = say
        self._elapsed_s = elapsed_s
        self.stopper = Stopper(*child, grace_s, self.killed)
        self._lock = threading.Lock()
        self._fired: set[str] = set()
        self._finished = False
        self.stopped: str | None = None  # the end record's `stopped` message

    def set_record(self) -> dict[str, Any]:
        """The record that starts the log's budget: what the limit is and what happens."""
        key = "limit_co2e_g" if self.budget.quantity == "co2e" else "limit_energy_j"
        return records.budget(
            time_s=time.time(),
            elapsed_s=self._elapsed_s(),
            event="set",
            limit=self.budget.text,
            quantity=self.budget.quantity,
            **{key: self.budget.limit},
            on_exceed=self.on_exceed,
            grace_s=self.stopper.grace_s,
        )

    def on_reading(self, totals: Totals) -> None:
        """The sampler's `on_reading`: the actual total at every reading (every --interval),
        not only at the logged samples, so a stop lands within one interval of the limit."""
        if "actual" in self._fired or self.stopped is not None or self._finished:
            return  # said already: no need to price the reading
        energy_j = sum(totals.energy_j.values())
        value = self._co2e_at_g(energy_j) if self.budget.quantity == "co2e" else energy_j
        if value > self.budget.limit:
            self._exceeded("actual", value, None, units.duration(totals.elapsed_s))

    def on_prediction(self, prediction: dict[str, Any]) -> None:
        """Each new prediction (`predictor.Predictor` listeners); acted on only when
        `confident` and the low end of its range is over the limit."""
        quantity = self.budget.quantity
        value = prediction.get("co2e_g" if quantity == "co2e" else "energy_j")
        margin = prediction.get("co2e_margin_g" if quantity == "co2e" else "energy_margin_j")
        if not isinstance(value, (int, float)) or not confident(prediction, quantity):
            return
        assert isinstance(margin, (int, float))
        if value - margin > self.budget.limit:
            fraction = float(prediction["fraction"])
            self._exceeded("predicted", value, fraction, f"{100 * fraction:.0f} %")

    def finish(self) -> None:
        """Once the child has ended: nothing more to act on (the report compares the totals
        with the limit); a stop in progress gets the rest of the tree (`Stopper.settle`)."""
        with self._lock:
            self._finished = True
        self.stopper.settle()

    def _exceeded(self, basis: str, value: float, fraction: float | None, at: str) -> None:
        with self._lock:
            if basis in self._fired or self.stopped is not None or self._finished:
                return  # warned once per basis; stopping once is enough
            self._fired.add(basis)
            message = (
                f"budget {self.budget.described} exceeded ({basis} {_shown(self.budget, value)} "
                f"at {at})"
            )
            if self.on_exceed == "stop":
                self.stopped = message
        key = "co2e_g" if self.budget.quantity == "co2e" else "energy_j"
        self._record(
            records.budget(
                time_s=time.time(),
                elapsed_s=self._elapsed_s(),
                event="exceeded",
                basis=basis,
                **{key: value},
                fraction=fraction,
                action=self.on_exceed,
                message=message,
            )
        )
        if self.on_exceed == "stop":
            grace = units.duration(self.stopper.grace_s)
            self._say(f"{message}: stopping the command (SIGTERM; SIGKILL after {grace})")
            self.stopper.stop()
        else:
            self._say(f"{message}; the command goes on (--on-exceed warn)")

    def killed(self, pids: list[int]) -> None:
        """The Stopper's `on_kill`: the tree outlived the grace period."""
        message = (
            f"the command was still running {units.duration(self.stopper.grace_s)} after "
            f"SIGTERM: SIGKILL sent"
        )
        self._record(
            records.budget(
                time_s=time.time(),
                elapsed_s=self._elapsed_s(),
                event="kill",
                pids=pids,
                message=message,
            )
        )
        self._say(message)


def _shown(budget: Budget, value: float) -> str:
    """A value of the budget's quantity, in human units: "503 g", "5.02 kWh"."""
    return units.mass(value) if budget.quantity == "co2e" else units.energy(value)
