"""A run claims its folder before it trains: ``RUN/lock.json``, so that two executors on one
benchmark folder (two ``medssl benchmark`` commands, or a rerun while Slurm jobs are queued)
never train the same run twice.

The lock records who holds it (host, pid, Slurm job id, when) and is created whole or not at
all: its text is written to a temporary sibling that is then hard-linked to ``lock.json``
(``os.link`` fails when the name exists, atomically, NFS included; a plain ``O_EXCL`` create
would let a reader see the file before its text). While the run trains, a heartbeat thread
touches the lock every ``stale_after_s / 5`` seconds; the holder removes it when the run ends,
finished or failed.

A lock is **stale**, and taken over by the next claimer, when its holder is gone:

- on the same host, its pid is no longer alive (a killed benchmark or worker); or
- its heartbeat is older than ``stale_after_s`` (default 300 s): how a lock left by a job on
  another node (preempted, cancelled, out of memory, node lost) is recognised without asking
  the scheduler.

Taking over renames the stale lock aside and checks that the one renamed is the one judged
stale; a fresh lock grabbed by mistake is put back. Each claim appends one line to
``RUN/claims.jsonl`` (holder, time, whether it took over a stale lock): the run's history of
executions, which the benchmark counts and the tests read.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medssl.runfiles import CLAIMS, LOCK

STALE_AFTER_S = 300.0
"""Default heartbeat age after which a lock is stale (a heartbeat is written every fifth)."""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    job_id: str | None  # the Slurm (submitit) job id, None outside a scheduler
    started: str  # ISO 8601, UTC
    token: str  # unique per claim: tells one claim's lock from another's
    # the process's start time in clock ticks since boot (Linux /proc): a pid reused by a new
    # process after the holder died is not mistaken for the holder; None where unknown
    pid_start: int | None = None


def this_holder() -> Holder:
    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")
    if job and os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return Holder(
        host=socket.gethostname(),
        pid=os.getpid(),
        job_id=job,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        token=uuid.uuid4().hex,
        pid_start=_process_start(os.getpid()),
    )


@dataclass
class Claim:
    """A held lock; ``release()`` (or leaving the ``with`` block) stops the heartbeat and
    removes it."""

    run_dir: Path
    holder: Holder
    took_over: Holder | None  # the stale holder this claim replaced
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start_heartbeat(self, every_s: float) -> None:
        def beat() -> None:
            while not self._stop.wait(every_s):
                with contextlib.suppress(OSError):
                    os.utime(self.run_dir / LOCK)

        self._thread = threading.Thread(target=beat, name="medssl-lock-heartbeat", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        current = read_holder(self.run_dir)
        if current is not None and current.token == self.holder.token:
            (self.run_dir / LOCK).unlink(missing_ok=True)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def read_holder(run_dir: Path) -> Holder | None:
    """The lock's holder, or None when the run is not locked (or its lock is unreadable,
    which only a hand-edited file can be: it is then treated as stale)."""
    try:
        return Holder(**json.loads((Path(run_dir) / LOCK).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return Holder(host="?", pid=-1, job_id=None, started="", token="unreadable")


def is_stale(run_dir: Path, holder: Holder, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether ``holder``'s lock on ``run_dir`` is abandoned (see the module docstring)."""
    if holder.token == "unreadable":
        return True
    if holder.host == socket.gethostname() and not _pid_alive(holder.pid, holder.pid_start):
        return True
    try:
        age = time.time() - (Path(run_dir) / LOCK).stat().st_mtime
    except FileNotFoundError:
        return True
    return age > stale_after_s


def lock_state(run_dir: Path, stale_after_s: float = STALE_AFTER_S) -> str:
    """``free`` (no lock), ``held`` (a live holder) or ``stale``."""
    holder = read_holder(run_dir)
    if holder is None:
        return "free"
    return "stale" if is_stale(run_dir, holder, stale_after_s) else "held"


def claim(run_dir: str | os.PathLike, stale_after_s: float = STALE_AFTER_S) -> Claim | None:
    """Claim ``run_dir`` for this process: a Claim (heartbeat started), or None when a live
    holder has it. A stale lock is taken over (``Claim.took_over`` names its holder)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    me = this_holder()
    took_over: Holder | None = None
    for _ in range(3):  # a stale lock taken over, or put back, then one more try
        if _create(run_dir, me):
            break
        old = read_holder(run_dir)
        if old is None:
            continue  # released between our attempt and our read
        if not is_stale(run_dir, old, stale_after_s):
            return None
        if _break(run_dir, old):
            took_over = old
    else:
        return None
    c = Claim(run_dir, me, took_over)
    _append_claim(run_dir, me, took_over)
    c.start_heartbeat(max(stale_after_s / 5, 0.05))
    return c


def claims(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The run's claims.jsonl records, oldest first (empty when it never ran here)."""
    path = Path(run_dir) / CLAIMS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _create(run_dir: Path, me: Holder) -> bool:
    tmp = run_dir / f".{LOCK}.{me.token}.tmp"
    tmp.write_text(json.dumps(asdict(me)) + "\n", encoding="utf-8")
    try:
        os.link(tmp, run_dir / LOCK)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _break(run_dir: Path, old: Holder) -> bool:
    """Rename the stale lock aside; True when the lock renamed was ``old``'s."""
    aside = run_dir / f".{LOCK}.stale.{uuid.uuid4().hex}"
    try:
        os.replace(run_dir / LOCK, aside)
    except FileNotFoundError:
        return False
    taken = read_holder_file(aside)
    if taken is not None and taken.token != old.token:  # a fresh claim came in between
        with contextlib.suppress(FileExistsError):
            os.link(aside, run_dir / LOCK)
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


def read_holder_file(path: Path) -> Holder | None:
    try:
        return Holder(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _append_claim(run_dir: Path, me: Holder, took_over: Holder | None) -> None:
    record = asdict(me) | {"took_over": asdict(took_over) if took_over else None}
    # one write() of one short line to an O_APPEND file: records never interleave
    fd = os.open(run_dir / CLAIMS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


def _pid_alive(pid: int, started: int | None = None) -> bool:
    """Whether process ``pid`` runs (and, where ``started`` is known, is the same process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    now = _process_start(pid)
    return started is None or now is None or now == started


def _process_start(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time, clock ticks after boot); None off Linux."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces and parentheses: split after its ')'
        return int(text[text.rindex(")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None
