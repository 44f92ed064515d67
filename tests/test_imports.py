"""What carbonwrap imports, in one place (as click's tests/test_imports.py does): every module a
plain `carbonwrap run -- true` may load, checked against one allow-list in a fresh interpreter.
Start-up is carbonwrap's first promise (0.1 s against 3-6 s for its peers); a module that slips
onto this path costs every run. Modules for an option (--budget, --start-within,
--prometheus-textfile, --progress-from-output, the live view) load only with it."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, cw_env, logs_in, records

# Every carbonwrap module `run -q -- true` loads on a host with a cgroup leaf and no GPU.
RUN_PATH = {
    "carbonwrap",
    "carbonwrap.choices",
    "carbonwrap.cli",
    "carbonwrap.cli.fastrun",  # `run` read without click (its definition, cli/definition.py)
    "carbonwrap.cli.main",
    "carbonwrap.commands",
    "carbonwrap.commands.run",
    "carbonwrap.entry",
    "carbonwrap.errors",
    "carbonwrap.gcpause",
    "carbonwrap.intensity",
    "carbonwrap.jsontext",  # json's C encoder and scanner without the json module
    "carbonwrap.intensity.location",
    "carbonwrap.intensity.catalog",
    "carbonwrap.intensity.plan",
    "carbonwrap.intensity.points",
    "carbonwrap.intensity.region",
    "carbonwrap.intensity.select",
    "carbonwrap.intensity.table",
    "carbonwrap.measure",
    "carbonwrap.measure.accounting",
    "carbonwrap.measure.attribution",
    "carbonwrap.measure.cgroup",
    "carbonwrap.measure.gpus",
    "carbonwrap.measure.leafjoin",  # the leaf made and joined first thing (os, _thread)
    "carbonwrap.measure.meters",
    "carbonwrap.measure.sampler",
    "carbonwrap.outfiles",
    "carbonwrap.packagedata",
    "carbonwrap.predict",
    "carbonwrap.predict.channel",
    "carbonwrap.run",
    "carbonwrap.run.child",
    "carbonwrap.run.context",
    "carbonwrap.run.finish",
    "carbonwrap.run.options",
    "carbonwrap.run.phases",
    "carbonwrap.run.redact",
    "carbonwrap.runlog",
    "carbonwrap.runlog.ledger",
    "carbonwrap.runlog.recorder",
    "carbonwrap.runlog.records",
    "carbonwrap.runlog.summary",
    "carbonwrap.runlog.writer",
    "carbonwrap.sensors",
    "carbonwrap.sensors.amd_energy",  # AMD hosts without readable RAPL (this VM, cloud VMs)
    "carbonwrap.sensors.cpu_estimate",
    "carbonwrap.sensors.meminfo",
    "carbonwrap.sensors.gpu_markers",  # stat calls: is a GPU driver here
    "carbonwrap.sensors.pidstat",  # /proc/PID/stat (who ran in the leaf; left running)
    "carbonwrap.sensors.rootcpu",  # the machine's busy time (/proc/stat only without it)
    "carbonwrap.sensors.rapl",
    "carbonwrap.settings",
    "carbonwrap.settings.catalog",
    "carbonwrap.settings.files",
    "carbonwrap.settings.resolve",
    "carbonwrap.lite",  # NamedTuple, Protocol, dataclass without typing, dataclasses
}
# Loaded only where the host needs them: NVML where an NVIDIA driver is installed, psutil where
# no cgroup leaf can be had (process-tree accounting).
# cgroupspawn, clonechild: the command born in a v2 leaf (clone3 through _ctypes), not where
# joins are quick
HOST_DEPENDENT = {"carbonwrap.sensors.nvml", "pynvml", "psutil", "carbonwrap.measure.cgroupspawn",
                  "carbonwrap.measure.clonechild"}  # fmt: skip
# Never on the plain run path, whatever the host: each costs milliseconds or more.
NEVER = {
    "click",  # ~15 ms: `run`'s line is read by cli/fastrun.py; click for help and errors
    "rich",  # ~90 ms: the report on a pipe or with -q is plain text
    "aiohttp",  # only when a live intensity provider is polled
    "asyncio",
    "importlib.resources",  # ~18 ms: data files come through the package loader
    "multiprocessing",  # report's parallel reading only
    "tempfile",  # outfiles names its temporary files itself (O_EXCL, relative to the directory)
    "tomllib",  # only when a settings file exists
    "carbonwrap.quantities",  # durations and budgets: only with the options that take them
    # The standard library's costly imports (issue 19: together more than the interpreter's own
    # start-up). typing: carbonwrap/lite.py builds NamedTuple and dataclass classes;
    # json: jsontext.py calls json's own C encoder and scanner; re, shlex, csv, datetime:
    # str methods and arithmetic held to them by tests; signal through _signal (no enum).
    "typing",
    "dataclasses",
    "inspect",
    "re",
    "json",
    "datetime",
    "csv",
    "shlex",
    "enum",
    "signal",
    "warnings",
    "importlib",  # importlib.import_module imports warnings: providers only
    "ctypes",  # prctl(PR_SET_CHILD_SUBREAPER): the process tree only; a v2 leaf's clone3
    # goes through its C part alone (_ctypes: measure/cgroupspawn.py)
    # collections, functools, contextlib and threading import one another: together ~6 ms
    # here. lite.py has NamedTuple, cache, suppress, nullcontext, Lock and Thread without them.
    "collections",
    "functools",
    "contextlib",
    "threading",
    "types",
    # math (a shared library) and itertools: lite.py's INF, isfinite and isinf; zip(range(n))
    "math",
    "itertools",
}

PROBE = """\
import atexit, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv[1:] = sys.argv[2:]
from carbonwrap.entry import main
main()
"""


# The interpreter as bare as a wheel's install starts it: no `site` (-S), so no .pth file runs
# (setuptools' distutils-precedence.pth imports warnings at every start of the development
# venv, and hid os.get_exec_path's import of it from this test); the package and the
# site-packages directories are on PYTHONPATH instead.
BARE = ("-S",)


def bare_env() -> dict[str, str]:
    return cw_env(PYTHONPATH=os.pathsep.join([str(REPO), *site.getsitepackages()]))


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    """The modules loaded by `carbonwrap ARGS` in a fresh interpreter, as the console script
    starts it; carbonwrap leaves through os._exit after running atexit handlers."""
    out = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, *BARE, "-c", PROBE, str(out), *args],
        cwd=tmp_path, env=bare_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return set(out.read_text().splitlines())


def at_interpreter_start() -> set[str]:
    """What the interpreter has loaded before carbonwrap runs, started as `imported_by`
    starts it."""
    code = "import sys; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, *BARE, "-c", code], env=bare_env(), capture_output=True, text=True
    )
    return set(result.stdout.splitlines())


def costly(loaded: set[str]) -> list[str]:
    """The NEVER modules carbonwrap itself loaded."""
    ours = loaded - at_interpreter_start()
    return sorted(m for m in ours if m in NEVER or m.split(".")[0] in NEVER)


def top(name: str) -> str:
    return name if name.startswith("carbonwrap") else name.split(".")[0]


def test_run_true_loads_only_the_allow_list(tmp_path: Path) -> None:
    loaded = imported_by(tmp_path, "run", "-q", "--log-dir", str(tmp_path), "--", "true")
    ours = {m for m in loaded if m.split(".")[0] == "carbonwrap"}
    unexpected = ours - RUN_PATH - HOST_DEPENDENT
    assert not unexpected, f"new on the run path (start-up cost): {sorted(unexpected)}"
    missing = RUN_PATH - ours
    assert not missing, f"no longer loaded: {sorted(missing)}; take them off RUN_PATH"
    assert not costly(loaded), f"loaded on the plain run path: {costly(loaded)}"
    (log,) = logs_in(tmp_path)
    if records(log)[0]["cpu_accounting"].startswith("cgroup"):
        assert "psutil" not in loaded  # process polling only without a leaf


def test_the_final_report_on_a_pipe_loads_nothing_costly(tmp_path: Path) -> None:
    """`run -- true` writes its report to stderr, a pipe here: plain text, and still none of
    the costly modules (the report's own renderers are the only additions, and math: the
    report's numbers get their significant digits from math.log10, render/units.py)."""
    loaded = imported_by(tmp_path, "run", "--log-dir", str(tmp_path), "--", "true")
    extra = [m for m in costly(loaded) if m != "math"]
    assert not extra, f"loaded to print the final report: {extra}"
    ours = {m for m in loaded if m.split(".")[0] == "carbonwrap"}
    assert {"carbonwrap.render.final", "carbonwrap.run.outputs"} <= ours


@pytest.mark.parametrize(
    ("option", "modules"),
    [
        (["--budget", "5kWh"], {"carbonwrap.quantities", "carbonwrap.run.budget"}),
        (["--prometheus-textfile", "{tmp}/run.prom"],
         {"carbonwrap.live.textfile", "carbonwrap.render.prometheus"}),
        (["--progress-from-output"], {"carbonwrap.predict.relay"}),
        (["--start-within", "0"], {"carbonwrap.quantities"}),
    ],
)  # fmt: skip
def test_an_option_loads_its_own_modules_only_with_it(
    tmp_path: Path, option: list[str], modules: set[str]
) -> None:
    given = [part.replace("{tmp}", str(tmp_path)) for part in option]
    loaded = imported_by(tmp_path, "run", "-q", "--log-dir", str(tmp_path), *given, "--", "true")
    assert modules <= loaded
    assert not modules & RUN_PATH  # and so (test above) never without the option


def test_the_schedule_is_not_loaded_without_start_within(tmp_path: Path) -> None:
    loaded = imported_by(tmp_path, "run", "-q", "--log-dir", str(tmp_path), "--", "true")
    schedule = {"carbonwrap.run.schedule", "carbonwrap.intensity.window"}
    schedule |= {"carbonwrap.render.schedule", "carbonwrap.quantities"}
    assert not schedule & loaded


def test_import_carbonwrap_loads_nothing_else() -> None:
    """`import carbonwrap` in a training script: no integration, framework, helper or socket
    module; the helper is loaded on first use."""
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import carbonwrap\n"
        "loaded = sorted(set(sys.modules) - before)\n"
        "carbonwrap.progress(1, 2, 'epoch')\n"  # no CARBONWRAP_PROGRESS: a no-op
        "print(json.dumps([loaded, sorted(set(sys.modules) - before)]))\n"
    )
    env = {k: v for k, v in cw_env().items() if k != "CARBONWRAP_PROGRESS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    at_import, after_use = json.loads(out.stdout)
    assert at_import == ["carbonwrap"]
    assert set(after_use) - set(at_import) == {"carbonwrap.report_progress"}


def test_import_carbonwrap_loads_only_its_init_and_names_load_their_own_module() -> None:
    """`import carbonwrap` (a notebook's `%load_ext carbonwrap` starts so) loads only
    carbonwrap/__init__; `carbonwrap.track` its module, no sensor yet; the extension's entry
    point no IPython until it registers the magics."""
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import carbonwrap\n"
        "at_import = sorted(set(sys.modules) - before)\n"
        "carbonwrap.track, carbonwrap.load_ipython_extension\n"
        "print(json.dumps([at_import, sorted(set(sys.modules) - before)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=cw_env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    at_import, after_names = json.loads(out.stdout)
    assert at_import == ["carbonwrap"]
    assert {"carbonwrap.run.track", "carbonwrap.notebook"} <= set(after_names)
    heavy = {"IPython", "carbonwrap.run.block", "carbonwrap.measure.meters", "rich"}
    assert not heavy & {top(m) for m in after_names}
