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
