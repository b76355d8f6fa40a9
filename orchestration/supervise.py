"""Run a long-lived command so that Ctrl-C (or SIGTERM/SIGHUP) stops it and everything it started.

Why: `./dev.sh ui` used to `exec dagster dev`, which, started from a non-interactive shell, inherits SIGINT as
ignored and also ignored SIGTERM for over a minute; SIGKILL ended it but left its webserver and daemon holding
the port. This wrapper starts the command in its own session (process group) with SIGINT/SIGTERM/SIGHUP back to
their defaults, forwards each of those signals it receives to the whole group as SIGINT, and after a grace
period SIGKILLs the group, including processes the command leaves behind (dagster's code servers).

    python -m orchestration.supervise [--grace SECONDS] -- COMMAND ARGS...

It exits with the command's status (128+N if a signal N ended it); after it forwarded a signal S, a command
that stopped cleanly, by a signal or by the escalation reports 128+S (130 after Ctrl-C). Standard library only.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DEFAULT_GRACE = 8.0
POLL = 0.05
AFTER_KILL = 5.0  # how long SIGKILLed processes get to disappear (one stuck in the kernel must not hang us)


def _reset_signals() -> None:
    """In the child before exec: default dispositions and no blocked stop signals (an ignored SIGINT is inherited)."""
    for signum in FORWARDED:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process remains in the group; a zombie waits for a reaper, not for us."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def supervise(command: list[str], grace: float = DEFAULT_GRACE) -> int:
    """Run `command` in its own session until it and its group have ended; returns the exit status to report."""
    received: list[int] = []
    pgid: int | None = None

    def on_signal(signum, _frame) -> None:
        received.append(signum)
        if pgid is not None:
            _signal_group(pgid, signal.SIGINT)

    previous = {signum: signal.signal(signum, on_signal) for signum in FORWARDED}
    try:
        try:
            child = subprocess.Popen(command, start_new_session=True, preexec_fn=_reset_signals)
        except OSError as e:
            print(f"supervise: cannot run {command[0]}: {e}", file=sys.stderr)
            return 127
        pgid = child.pid  # a session leader's pid is its process group id
        if received:  # a signal arrived before the child existed
            _signal_group(pgid, signal.SIGINT)

        deadline: float | None = None
        escalated = False
        returncode: int | None = None
        while True:
            if returncode is None:
                returncode = child.poll()
            if returncode is not None:
                if not _group_alive(pgid) or (escalated and time.monotonic() > deadline + AFTER_KILL):
                    break
            if returncode is not None and deadline is None:
                # The command ended on its own but left processes in its group: stop them the same way.
                _signal_group(pgid, signal.SIGINT)
                deadline = time.monotonic() + grace
            if received and deadline is None:
                deadline = time.monotonic() + grace
            if deadline is not None and not escalated and time.monotonic() >= deadline:
                name = os.path.basename(command[0])
                still = "is still running" if returncode is None else "left processes running"
                print(
                    f"supervise: {name} {still} {grace:g} s after SIGINT; sending SIGKILL to its process group",
                    file=sys.stderr,
                    flush=True,
                )
                escalated = True
                _signal_group(pgid, signal.SIGKILL)
            if returncode is None:
                try:
                    returncode = child.wait(timeout=POLL)
                except subprocess.TimeoutExpired:
                    pass
            else:
                time.sleep(POLL)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    if received and (returncode <= 0 or escalated):
        return 128 + received[0]
    return _exit_status(returncode)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m orchestration.supervise",
        usage="%(prog)s [--grace SECONDS] -- COMMAND ARGS...",
        description="Run COMMAND in its own process group; SIGINT/SIGTERM/SIGHUP stop the whole group.",
    )
    parser.add_argument(
        "--grace", type=float, default=DEFAULT_GRACE, help=f"seconds from SIGINT to SIGKILL (default {DEFAULT_GRACE:g})"
    )
    if "--" not in argv:
        parser.error("missing '-- COMMAND ARGS...'")
    split = argv.index("--")
    options, command = parser.parse_args(argv[:split]), argv[split + 1 :]
    if not command:
        parser.error("missing COMMAND after '--'")
    if options.grace < 0:
        parser.error("--grace must be at least 0")
    return supervise(command, options.grace)


if __name__ == "__main__":
    sys.exit(main())
