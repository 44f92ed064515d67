"""The entry point starts without the cyclic GC: resuming it turns the collector back on."""

from __future__ import annotations

import gc

from carbonwrap.gcpause import resume as resume_gc


def test_resume_gc_turns_the_collector_back_on_and_leaves_an_enabled_one_alone() -> None:
    gc.disable()
    try:
        resume_gc()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # start-up's objects are out of later collections
    finally:
        gc.unfreeze()
        gc.enable()
    resume_gc()  # already on: nothing frozen
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_run_accounting_is_opened_first_only_where_it_is_auto() -> None:
    """entry.py opens a run's CPU accounting before the CLI is imported only when the line
    cannot name another method (or ask for help, or wait to start): else the run opens it."""
    from carbonwrap.entry import opens_a_run

    env: dict[str, str] = {}
    assert opens_a_run(["run", "--", "true"], env)
    assert opens_a_run(["run", "-q", "--tag", "a=b", "--", "x", "--cpu-accounting"], env)
    assert opens_a_run(["run", "true"], env)
    for refused in (
        ["run", "--cpu-accounting", "process-tree", "--", "true"],
        ["run", "--cpu-accounting=cgroup1", "--", "true"],
        ["run", "--start-within", "1h", "--", "true"],
        ["run", "--help"],
        ["run", "-h"],
        ["run", "python", "-h"],  # the command's own words, without `--`: said no
        ["report", "logs"],
        [],
    ):
        assert not opens_a_run(refused, env), refused
    assert not opens_a_run(["run", "--", "true"], {"_CARBONWRAP_COMPLETE": "bash_complete"})
