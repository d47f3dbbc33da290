"""``--processes N``: one parent that keeps N worker processes running and drains them all on SIGTERM.

One worker process is one event loop on one core; a container with 4 cores needs 4 of them. The parent
runs no jobs: it starts each worker as ``python -m scalr_queue.worker`` (a fresh interpreter, nothing
forked from a live event loop), forwards SIGTERM and SIGINT, restarts a worker that dies, and exits
once every worker has drained. It waits on signals (``sigtimedwait``), so an idle parent uses no CPU.

Each worker gets its own health and metrics port: the configured port plus its index (0, 1, ...), so
worker 0 answers on the port a health check already probes. Workers run in their own session (a
terminal's Ctrl-C reaches the parent, which forwards it once) and get SIGTERM if the parent dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

logger = logging.getLogger("scalr_queue.worker")

SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
EXIT_USER_MISTAKE = 2  # a worker reported a bad module or setting: restarting cannot fix it
QUICK_DEATH = 10.0  # a worker that dies sooner than this after its start backs off before the next one
FIRST_DELAY, MAX_DELAY = 0.5, 30.0
PR_SET_PDEATHSIG = 1


def _child_setup() -> None:  # pragma: no cover - runs in the child between fork and exec
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # the mask survives exec: give the worker its signals
    with contextlib.suppress(OSError, AttributeError):  # not Linux: a killed parent's workers finish on their own
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Slot:
    """One worker position: its live process, or when it is due to be started again."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None
    delay: float = FIRST_DELAY
    done: bool = False


@dataclass
class Supervisor:
    """Keeps ``count`` workers running; ``command`` and ``env_for(index)`` say how to start worker ``index``."""

    count: int
    command: Sequence[str]
    env_for: Callable[[int], Mapping[str, str]]
    burst: bool = False
    slots: list[Slot] = field(default_factory=list)
    stopping: bool = False
    exit_code: int = 0

    def run(self) -> int:
        """Start the workers, supervise them until they have all stopped; the exit code for the parent."""
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            self.slots = [Slot(i) for i in range(self.count)]
            for slot in self.slots:
                self._start(slot)
            logger.info(
                "supervising %d worker processes (pids %s)",
                self.count,
                ", ".join(str(s.proc.pid) for s in self.slots if s.proc),
            )
            while any(not s.done for s in self.slots):
                info = signal.sigtimedwait(SIGNALS, self._wait_time())
                if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                    self._stop(signal.Signals(info.si_signo))
                self._reap()
                self._restart_due()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return self.exit_code

    def _start(self, slot: Slot) -> None:
        slot.proc = subprocess.Popen(
            list(self.command),
            env={**os.environ, **self.env_for(slot.index)},
            start_new_session=True,
            preexec_fn=_child_setup,
        )
        slot.started = time.monotonic()
        slot.restart_at = None

    def _wait_time(self) -> float:
        due = [s.restart_at for s in self.slots if s.restart_at is not None]
        return max(0.0, min(due) - time.monotonic()) if due else 3600.0

    def _stop(self, sig: signal.Signals) -> None:
        again = self.stopping
        self.stopping = True
        live = [s for s in self.slots if s.proc is not None and s.proc.poll() is None]
        logger.info(
            "%s%s: %s %d worker processes",
            "second " if again else "",
            sig.name,
            "cancelling the running jobs of" if again else "draining",
            len(live),
        )
        for slot in self.slots:
            if slot.proc is None:
                slot.done = True  # waiting for a restart that will not come
                slot.restart_at = None
        for slot in live:
            assert slot.proc is not None
            slot.proc.send_signal(signal.SIGTERM)

    def _reap(self) -> None:
        for slot in self.slots:
            proc = slot.proc
            if proc is None or proc.poll() is None:
                continue
            code, slot.proc = proc.returncode, None
            if self.stopping or (self.burst and code == 0):
                slot.done = True
                if code not in (0, -signal.SIGTERM):
                    self.exit_code = self.exit_code or 1
                continue
            if code == EXIT_USER_MISTAKE:
                logger.error(
                    "worker process %d (pid %d) exited 2 (a bad module or setting): stopping", slot.index, proc.pid
                )
                self.exit_code = EXIT_USER_MISTAKE
                slot.done = True
                self._stop(signal.SIGTERM)
                continue
            quick = time.monotonic() - slot.started < QUICK_DEATH
            slot.delay = min(MAX_DELAY, slot.delay * 2) if quick else FIRST_DELAY
            wait = slot.delay if quick else 0.0
            slot.restart_at = time.monotonic() + wait
            logger.warning(
                "worker process %d (pid %d) exited with %s; starting another in %.1fs",
                slot.index,
                proc.pid,
                _describe(code),
                wait,
            )

    def _restart_due(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now:
                self._start(slot)
                assert slot.proc is not None
                logger.info("worker process %d restarted (pid %d)", slot.index, slot.proc.pid)


def _describe(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def worker_command(module: str, queue: str | None, concurrency: int | None, burst: bool) -> list[str]:
    """The command line of one worker process (the parent's flags, minus ``--processes``)."""
    command = [sys.executable, "-m", "scalr_queue.worker", module]
    if queue is not None:
        command += ["--queue", queue]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    if burst:
        command.append("--burst")
    return command


def port_env(health_port: int | None, metrics_port: int | None) -> Callable[[int], dict[str, str]]:
    """Worker ``index`` serves health and metrics on the configured ports plus ``index``."""

    def env_for(index: int) -> dict[str, str]:
        env = {"SCALR_QUEUE_PROCESSES": "1"}
        if health_port is not None:
            env["SCALR_QUEUE_HEALTH_PORT"] = str(health_port + index)
        if metrics_port is not None:
            env["SCALR_QUEUE_METRICS_PORT"] = str(metrics_port + index)
        return env

    return env_for
