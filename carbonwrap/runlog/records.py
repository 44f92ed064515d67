"""The log's records: start, sample, intensity, progress, prediction, budget, warning, end.
Units are in the key names."""

from __future__ import annotations

import time

from carbonwrap import jsontext

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    Record = dict[str, Any]
else:
    Record = dict  # a record at run time: what json reads and writes

LOG_SCHEMA = "carbonwrap.log/1"

# Job metadata worth keeping: schedulers and launchers that tie ranks of one job together.
# Slurm's are those srun(1) and sbatch(1) set ("OUTPUT ENVIRONMENT VARIABLES", 22.05); the
# batch script itself has no SLURM_STEP_ID (checked on Slurm 22.05).
JOB_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_STEP_ID",
    "SLURM_PROCID",
    "SLURM_LOCALID",
    "SLURM_NODEID",
    "SLURM_CLUSTER_NAME",
    "SLURM_JOB_PARTITION",
    "SLURM_JOB_USER",
    "SLURM_JOB_NUM_NODES",
    "SLURM_NTASKS",
    "SLURM_STEP_GPUS",
    "SLURM_JOB_GPUS",
    "PBS_JOBID",
    "LSB_JOBID",
    "TORCHELASTIC_RUN_ID",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "MPI_LOCALRANKID",  # MPICH, Intel MPI
    "PALS_LOCAL_RANKID",  # Cray PALS
    "PMI_RANK",
    "PMIX_RANK",
    "PMI_SIZE",
    "PMIX_NAMESPACE",  # Open MPI 5: one per job
    "OMPI_MCA_ess_base_jobid",  # Open MPI 4
)


# Every record carbonwrap writes must be readable by its own reader, which skips a line over
# 4 MiB as damage (`reader._MAX_LINE`): whatever can grow is bounded here, at the writer. A
# command line (up to ARG_MAX, a few MiB, and each control character 6 bytes of JSON) keeps
# the arguments that fit in ARGV_BYTES of JSON and says how many it left out (`argv_cut`); tags
# likewise (`tags_cut`); lists (signals received, PIDs) keep their first LIST_ITEMS and a count
# of the rest (`<key>_cut`); a text (a message, a path, a value from the environment) keeps its
# first TEXT_CHARS characters and ends in CUT_MARK. The largest record is well under 2 MiB
# (tests/unit/runlog/test_bounded_records.py builds it).
ARGV_BYTES = 64 << 10
TAGS_BYTES = 64 << 10
TEXT_CHARS = 4096
PATH_CHARS = 16384  # a working directory may be deeper than PATH_MAX (4096)
LIST_ITEMS = 1000
CUT_MARK = "\u2026"  # …
_JSON_CHAR_BYTES = 12  # the most one character takes in JSON: "\ud83d\ude00" for U+1F600


def _text(text: str, limit: int = TEXT_CHARS) -> str:
    """`text`, or its first characters and CUT_MARK: at most `limit` characters."""
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return text[: limit - 1] + CUT_MARK


def _json_size(value: Any) -> int:
    return len(jsontext.dumps(value))  # ASCII, as `encode` writes it: its length is its bytes


def _os_bytes(text: str) -> int:
    """How many bytes `text` was on the command line (undecodable bytes are surrogates)."""
    try:
        return len(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return len(text.encode("utf-8", "surrogatepass"))


def _bounded_argv(argv: Sequence[str]) -> tuple[list[str], dict[str, int] | None]:
    """The arguments that fit, whole, in ARGV_BYTES of JSON, and what was left out
    ({"arguments": N, "bytes": B}), or None when all fit. A first argument that alone does not
    fit is kept cut (ending in CUT_MARK), so the log still says which program ran."""
    if sum(map(len, argv)) * _JSON_CHAR_BYTES + 3 * len(argv) <= ARGV_BYTES:
        return list(argv), None  # the usual command line: no measuring
    kept: list[str] = []
    size = 2  # []
    for arg in argv:
        size += _json_size(arg) + 1  # and a comma
        if size > ARGV_BYTES:
            break
        kept.append(arg)
    if len(kept) == len(argv):
        return kept, None
    left_bytes = sum(_os_bytes(arg) for arg in argv[len(kept) :])
    if not kept:
        first = argv[0][: ARGV_BYTES // _JSON_CHAR_BYTES - 1]
        kept = [first + CUT_MARK]
        left_bytes -= _os_bytes(first)
    return kept, {"arguments": len(argv) - len(kept), "bytes": left_bytes}


def _bounded_tags(tags: Mapping[str, str]) -> tuple[dict[str, str], dict[str, int] | None]:
    """The tags that fit in TAGS_BYTES of JSON (keys and values cut to TEXT_CHARS / 4), and
    what was left out ({"tags": N, "bytes": B}), or None when all fit."""
    kept: dict[str, str] = {}
    size = 2
    left = left_bytes = 0
    for key, value in tags.items():
        short_key, short_value = _text(key, TEXT_CHARS // 4), _text(value, TEXT_CHARS // 4)
        if not left:
            size += _json_size(short_key) + _json_size(short_value) + 2  # : and ,
        if left or size > TAGS_BYTES:
            left += 1
            left_bytes += _os_bytes(key) + _os_bytes(value)
            continue
        kept[short_key] = short_value
    return kept, {"tags": left, "bytes": left_bytes} if left else None


def _bounded_list(record: Record, key: str, items: Sequence[Any], more: int = 0) -> None:
    """record[key]: the first LIST_ITEMS of `items`; record[key + "_cut"]: how many more (those
    beyond them, and `more` the caller never kept)."""
    record[key] = [_text(i) if isinstance(i, str) else i for i in items[:LIST_ITEMS]]
    cut = max(0, len(items) - LIST_ITEMS) + max(0, more)
    if cut:
        record[f"{key}_cut"] = cut


def _texts(values: Mapping[str, Any], limit: int = TEXT_CHARS) -> dict[str, Any]:
    """A small table of strings (region, job), each key and string cut to `limit` characters."""
    return {
        _text(str(k), limit): _text(v, limit) if isinstance(v, str) else v
        # the first LIST_ITEMS (itertools.islice, without itertools on the run path)
        for _, (k, v) in zip(range(LIST_ITEMS), values.items(), strict=False)
    }


def encode(record: Record) -> bytes:
    """One log line: compact JSON, keys in the order the record was built, no NaN or Infinity
    (not JSON); ValueError or TypeError for a record that cannot be one."""
    return (jsontext.dumps(record, compact=True, allow_nan=False) + "\n").encode()


# How every sample line begins, as `encode(sample(...))` writes it: the fast readers
# (runlog/reader.py, report/series.py) recognise sample lines by these bytes and skip most
# unparsed; a line that begins otherwise is parsed. SAMPLE_TIME's groups: up to the hour, the
# minute (the 5-minute bucket a sample falls in, without parsing it).
SAMPLE_START = b'{"type":"sample",'
SAMPLE_TIME = rb'\{"type":"sample","time":"(\d{4}-\d\d-\d\dT\d\d:)(\d\d):\d\d(?:\.\d+)?Z"'


def utc_iso(timestamp_s: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-27T06:29:42.123Z: what
    `datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")` gives (the
    microseconds rounded half to even, then cut to milliseconds), without importing datetime
    (every run writes one at start-up). Times before 1970 are not written."""
    whole = float(int(timestamp_s))  # math.modf's parts, exact (no math on the run path)
    fraction = timestamp_s - whole
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1.0, micro - 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micro // 1000:03d}Z"


def parse_utc(text: object) -> float | None:
    """Epoch seconds of an ISO 8601 time as `utc_iso` writes it; None for anything else.

    Times as `utc_iso` writes them ("2026-11-27T06:29:42.123Z") are read by arithmetic (the
    run folds its own start record at start-up); any other form by datetime.fromisoformat."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    fast = _parse_written(text)
    if fast is not None:
        return fast
    import datetime as dt  # another writer's form: not on the run's path

    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def _parse_written(text: str) -> float | None:
    """YYYY-MM-DDTHH:MM:SS.mmmZ as epoch seconds (what datetime would give), else None."""
    if len(text) != 24 or text[4:17:3] != "--T::" or text[19] != "." or text[23] != "Z":
        return None
    digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
    digits += text[20:23]
    if not (digits.isascii() and digits.isdigit()):
        return None
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if not (1 <= month <= 12 and 1 <= day <= _month_days(year, month)):
        return None
    if hour > 23 or minute > 59 or second > 59 or year < 1:
        return None
    seconds = ((_days_since_epoch(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    return (seconds * 1_000_000 + int(text[20:23]) * 1000) / 1_000_000  # as timedelta divides


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_since_epoch(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's days_from_civil)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def job_metadata(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: environ[name] for name in JOB_VARIABLES if name in environ}


def job_key(job: Mapping[str, str]) -> str | None:
    """The job a run belongs to, so that the ranks of one multi-node job add up. A Slurm job is
    its cluster, job id (array job and task for an array's task) and step, written as Slurm
    writes a step ("slurm c:7_2.0"; the batch script has no step: "slurm c:7"): job ids repeat
    across clusters and after a controller's state is reset, and each step is measured on its
    own. Logs from before the step was recorded read as the job alone."""
    if job.get("SLURM_JOB_ID"):
        cluster = job.get("SLURM_CLUSTER_NAME")
        number = slurm_job_id(job)
        return f"slurm {cluster}:{number}" if cluster else f"slurm {number}"
    # torchrun's --rdzv-id defaults to "none": that ties nothing together.
    if job.get("TORCHELASTIC_RUN_ID") and job["TORCHELASTIC_RUN_ID"] != "none":
        return f"torchrun {job['TORCHELASTIC_RUN_ID']}"
    for name, label in (
        ("PBS_JOBID", "pbs"),
        ("LSB_JOBID", "lsf"),
        ("PMIX_NAMESPACE", "mpi"),  # Open MPI 5 / PMIx launchers: one namespace per job
        ("OMPI_MCA_ess_base_jobid", "mpi"),
    ):
        if job.get(name):
            return f"{label} {job[name]}"
    return None


def slurm_job_id(job: Mapping[str, str]) -> str:
    """The job (step) as sacct(1) names it: 7, 7_2 (array task), 7.0 (step); "" outside Slurm."""
    array, task = job.get("SLURM_ARRAY_JOB_ID"), job.get("SLURM_ARRAY_TASK_ID")
    number = f"{array}_{task}" if array and task else job.get("SLURM_JOB_ID", "")
    step = job.get("SLURM_STEP_ID")
    return f"{number}.{step}" if number and step else number


# The rank of a run in its job, the innermost launcher first: a wrapper that torchrun or
# mpirun starts inside a Slurm job inherits the batch step's SLURM_PROCID (0 for all).
RANK_VARIABLES = ("RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID")


def job_rank(job: Mapping[str, str]) -> str | None:
    """The run's rank in its job, or None. SLURM_PROCID not in the batch script (its 0 is that
    of whatever the script starts): where SLURM_LOCALID was logged (this version on) and
    SLURM_STEP_ID was not."""
    batch = "SLURM_LOCALID" in job and not job.get("SLURM_STEP_ID")
    for name in RANK_VARIABLES:
        if name == "SLURM_PROCID" and batch:
            continue
        value = job.get(name, "").strip()
        if value.isascii() and value.isdigit():
            return value
    return None


def start(
    *,
    run_id: str,
    time_s: float,
    argv: Sequence[str] | None,
    cwd: str,
    host: str,
    pid: int,
    versions: Mapping[str, str],
    cpu_accounting: str,
    components: Mapping[str, Mapping[str, Any]],
    region: Mapping[str, str],
    pue: float,
    interval_s: float,
    log_interval_s: float,
    job: Mapping[str, str],
    tags: Mapping[str, str],
    schedule: Mapping[str, Any] | None = None,
    node_role: tuple[str, str] | None = None,
    kind: str | None = None,
) -> Record:
    """`kind`: "block" for a block of Python measured in-process (`carbonwrap.track`: `argv`
    is its name, `pid` the process's); None for a command (logs have no `kind` then).
    `schedule`: the carbon-aware start (`schedule.decide`), only for runs that asked.
    `node_role`: in a job, ("leader" or "member", why): a member's sample and end records hold
    no whole-device figures of CPU and DRAM (the node's leader records them), and GPU figures
    only for the GPUs it claimed (`run/node_role.py`).
    `argv_cut`, `tags_cut`: what of a huge command line or set of tags was left out (see
    ARGV_BYTES), only when something was."""
    kept_argv, argv_cut = _bounded_argv(argv) if argv is not None else (None, None)
    kept_tags, tags_cut = _bounded_tags(tags)
    record: Record = {
        "type": "start",
        "schema": LOG_SCHEMA,
        "run_id": run_id,
        "time": utc_iso(time_s),
        "argv": kept_argv,
        "cwd": _text(cwd, PATH_CHARS),
        "host": _text(host),
        "pid": pid,
        "versions": _texts(versions),
        "cpu_accounting": cpu_accounting,
        "components": {name: dict(info) for name, info in components.items()},
        "region": _texts(region),
        "pue": pue,
        "interval_s": interval_s,
        "log_interval_s": log_interval_s,
        # Job ids are short; 40 variables of TEXT_CHARS would be 2 MB of JSON (ARGV_BYTES' note).
        "job": _texts(job, TEXT_CHARS // 4),
        "tags": kept_tags,
    }
    if argv_cut is not None:
        record["argv_cut"] = argv_cut
    if tags_cut is not None:
        record["tags_cut"] = tags_cut
    if schedule is not None:
        record["schedule"] = _texts(schedule)
    if node_role is not None:
        record["node_role"], record["node_role_basis"] = node_role[0], _text(node_role[1])
    if kind is not None:
        record["kind"] = kind
    return record


def sample(
    *,
    time_s: float,
    elapsed_s: float,
    cpu_s: float,
    energy_j: Mapping[str, float],
    device_energy_j: Mapping[str, float],
    gpus: Mapping[int, Mapping[str, Any]] | None = None,
) -> Record:
    """Cumulative totals since the start: a log cut anywhere still sums correctly.

    `gpus`: device index -> {energy_j, device_energy_j, methods: {method: intervals}};
    device_energy_j None: not recorded by this wrapper (another of its job's on the node does).
    """
    record: Record = {
        "type": "sample",
        "time": utc_iso(time_s),
        "elapsed_s": round(elapsed_s, 3),
        "cpu_s": round(cpu_s, 6),
        "energy_j": {k: round(v, 6) for k, v in energy_j.items()},
        "device_energy_j": {k: round(v, 6) for k, v in device_energy_j.items()},
    }
    if gpus:
        record["gpus"] = {
            str(index): {
                "energy_j": round(gpu["energy_j"], 6),
                **(
                    {"device_energy_j": round(gpu["device_energy_j"], 6)}
                    if gpu["device_energy_j"] is not None
                    else {}
                ),
                "methods": dict(gpu["methods"]),
            }
            for index, gpu in gpus.items()
        }
    return record


def intensity(
    *,
    time_s: float,
    elapsed_s: float,
    intensity_g_per_kwh: float,
    region: str,
    source: str,
    signal: str = "average",
    kind: str = "static",
    valid_from_s: float | None = None,
    valid_to_s: float | None = None,
    reason: str | None = None,
) -> Record:
    """An intensity value. Kinds static, latest and forecast are in force from this record on,
    until the next one; kind measured revises the past window [valid_from, valid_to)."""
    record: Record = {
        "type": "intensity",
        "time": utc_iso(time_s),
        "elapsed_s": round(elapsed_s, 3),
        "intensity_g_per_kwh": intensity_g_per_kwh,
        "region": _text(region),
        "source": _text(source),
        "signal": _text(signal),
        "kind": kind,
    }
    if valid_from_s is not None and valid_to_s is not None:
        record["valid_from"] = utc_iso(valid_from_s)
        record["valid_to"] = utc_iso(valid_to_s)
    if reason is not None:
        record["reason"] = _text(reason)
    return record


def progress(
    *,
    time_s: float,
    elapsed_s: float,
    done: float,
    total: float | None,
    unit: str,
    source: str,
) -> Record:
    """How far the command says it is: `done` of `total` `unit`s ("epoch", "step", or
    "fraction" with total 1.0; total None when unknown), from `source` ("channel": the
    CARBONWRAP_PROGRESS channel; "output": recognised in the command's output)."""
    return {
        "type": "progress",
        "time": utc_iso(time_s),
        "elapsed_s": round(elapsed_s, 3),
        "done": done,
        "total": total,
        "unit": _text(unit),
        "source": source,
    }


def prediction(
    *,
    time_s: float,
    elapsed_s: float,
    done: float,
    total: float,
    unit: str,
    duration_s: float,
    energy_j: float,
    co2e_g: float,
    duration_margin_s: float | None,
    energy_margin_j: float | None,
    co2e_margin_g: float | None,
    intensity_g_per_kwh: float,
    intensity_basis: str,
    basis: str,
    intervals: int,
    report_elapsed_s: float | None = None,
) -> Record:
    """The run's predicted totals (`predict.estimate`) after the progress so far: duration,
    attributed energy (before PUE) and CO2e (with PUE), each with a margin of about 95 % (None
    from too few reports); the intensity the remaining energy is priced at and its basis
    ("forecast", "forecast+current" or "current"); `basis`: what the rate rests on, in words,
    over `intervals` report intervals; `report_elapsed_s`: when the last report it rests on
    arrived (what the prediction knew; `elapsed_s` is when it was made)."""
    return {
        "type": "prediction",
        "time": utc_iso(time_s),
        "elapsed_s": round(elapsed_s, 3),
        "report_elapsed_s": None if report_elapsed_s is None else round(report_elapsed_s, 3),
        "done": done,
        "total": total,
        "unit": _text(unit),
        "fraction": round(min(1.0, done / total), 6) if total > 0 else None,
        "duration_s": round(duration_s, 3),
        "energy_j": round(energy_j, 3),
        "co2e_g": round(co2e_g, 6),
        "duration_margin_s": None if duration_margin_s is None else round(duration_margin_s, 3),
        "energy_margin_j": None if energy_margin_j is None else round(energy_margin_j, 3),
        "co2e_margin_g": None if co2e_margin_g is None else round(co2e_margin_g, 6),
        "intensity_g_per_kwh": round(intensity_g_per_kwh, 3),
        "intensity_basis": intensity_basis,
        "basis": _text(basis),
        "intervals": intervals,
    }


def budget(*, time_s: float, elapsed_s: float, event: str, **fields: Any) -> Record:
    """A budget event (`budget.py`). "set": limit (as given, "500 g"), quantity ("co2e" or
    "energy"), limit_co2e_g or limit_energy_j, on_exceed ("warn" or "stop"), grace_s.
    "exceeded": basis ("actual" or "predicted"), co2e_g or energy_j, fraction (of the work, for
    a prediction), action ("warn" or "stop"), message. "kill": pids, message. Texts and lists
    are bounded (TEXT_CHARS, LIST_ITEMS: `pids_cut` counts the PIDs left out)."""
    record: Record = {
        "type": "budget",
        "time": utc_iso(time_s),
        "elapsed_s": round(elapsed_s, 3),
        "event": event,
    }
    for key, value in fields.items():
        if isinstance(value, (list, tuple)):
            _bounded_list(record, key, value)
        else:
            record[key] = _text(value) if isinstance(value, str) else value
    return record


def warning(*, time_s: float, elapsed_s: float, message: str) -> Record:
    return {
        "type": "warning",
        "time": utc_iso(time_s),
        "elapsed_s": round(elapsed_s, 3),
        "message": _text(message),
    }


def end(
    *,
    time_s: float,
    elapsed_s: float,
    exit_code: int,
    signal: str | None,
    cpu_s: float,
    energy_j: Mapping[str, float],
    device_energy_j: Mapping[str, float],
    leftover_pids: Sequence[int],
    signals_received: Sequence[str],
    gpus: Mapping[int, Mapping[str, Any]] | None = None,
    stopped: str | None = None,
    escaped_pids: Sequence[int] = (),
    signals_not_kept: int = 0,
) -> Record:
    """`stopped`: why carbonwrap stopped the command ("budget 500 g CO2e exceeded (actual …)"),
    only when it did. `escaped_pids`: processes that moved themselves out of the run's cgroup
    (their CPU from then on not counted), only when there were any. `leftover_pids`,
    `signals_received` and `escaped_pids` keep their first LIST_ITEMS; `leftover_pids_cut`,
    `signals_received_cut`, `escaped_pids_cut`: how many more, only when there were more
    (`signals_not_kept`: signals the caller counted without keeping their names)."""
    record = sample(
        time_s=time_s,
        elapsed_s=elapsed_s,
        cpu_s=cpu_s,
        energy_j=energy_j,
        device_energy_j=device_energy_j,
        gpus=gpus,
    )
    record.update(type="end", exit_code=exit_code, signal=signal)
    _bounded_list(record, "leftover_pids", leftover_pids)
    _bounded_list(record, "signals_received", signals_received, signals_not_kept)
    if stopped is not None:
        record["stopped"] = _text(stopped)
    if escaped_pids:
        _bounded_list(record, "escaped_pids", escaped_pids)
    return record
