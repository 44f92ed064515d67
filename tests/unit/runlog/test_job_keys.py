"""Job keys: the scheduler's job a run belongs to, from its environment."""

from __future__ import annotations

from carbonwrap.runlog.records import job_key


def test_job_keys() -> None:
    assert job_key({"SLURM_JOB_ID": "7", "SLURM_PROCID": "3"}) == "slurm 7"
    assert job_key({"SLURM_JOB_ID": "9", "SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "2",
                    "SLURM_CLUSTER_NAME": "c"}) == "slurm c:7_2"  # fmt: skip
    assert job_key({"TORCHELASTIC_RUN_ID": "exp-4", "RANK": "1"}) == "torchrun exp-4"
    assert job_key({"TORCHELASTIC_RUN_ID": "none"}) is None  # torchrun's default id
    assert job_key({"PBS_JOBID": "12.server"}) == "pbs 12.server"
    assert job_key({"LSB_JOBID": "55"}) == "lsf 55"
    assert job_key({"OMPI_COMM_WORLD_RANK": "0"}) is None
    assert job_key({}) is None
