"""orchestration.supervise and the long-running dev.sh commands stop on Ctrl-C and leave nothing behind.

Real processes throughout: small Python children for the supervisor itself, and `./dev.sh ui` / `./dev.sh mlflow-ui`
started the way a terminal would run them, stopped the way Ctrl-C does (SIGINT to the foreground process group).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


# ---------------------------------------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_can_be_bound(port: int) -> bool:
    """What a server restarting on the port does (SO_REUSEADDR, so only a listener still holding it fails)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


def processes() -> dict[int, dict]:
    """Every process from /proc: ppid, pgid, sid, state and start time (to tell a reused pid apart)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()  # state ppid pgrp session ... (starttime is field 22 of stat)
        table[int(entry)] = dict(
            state=fields[0].decode(),
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            start=int(fields[19]),
            cmd=cmdline[:160],
        )
    return table


def live(table: dict[int, dict]) -> dict[int, dict]:
    """Zombies are dead: they only wait for a reaper (here possibly a PID 1 that never reaps)."""
    return {pid: p for pid, p in table.items() if p["state"] not in ("Z", "X")}


def descendants(root: int) -> dict[int, dict]:
    table = processes()
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, p in table.items():
            if p["ppid"] == parent and pid not in found:
                found[pid] = p
                frontier.append(pid)
    return found


def survivors(watched: dict[int, dict], pgids: set[int]) -> list[str]:
    """Live processes that are among `watched` (same pid and start time) or in one of `pgids`."""
    now = live(processes())
    left = [p for pid, p in now.items() if p["pgid"] in pgids]
    left += [now[pid] for pid, p in watched.items() if pid in now and now[pid]["start"] == p["start"]]
    return sorted({f"{p['pgid']}: {p['cmd']}" for p in left})


def group_empty(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return not any(p["pgid"] == pgid for p in live(processes()).values())


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output file)"


def wait_for_file(path: Path, process: subprocess.Popen, log: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        assert process.poll() is None, f"ended early with {process.returncode}:\n{tail(log)}"
        time.sleep(0.05)
    pytest.fail(f"{path.name} never appeared:\n{tail(log)}")


def kill_group(process: subprocess.Popen, pgids: set[int] = frozenset()) -> None:
    """Cleanup for a failing test: nothing it started may keep running (the supervised group included)."""
    tree = descendants(process.pid) if process.poll() is None else {}
    for pgid in {process.pid, *pgids, *(p["pgid"] for p in tree.values())}:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def supervise(tmp_path: Path, child_source: str, *options: str, preexec_fn=None) -> tuple[subprocess.Popen, Path]:
    """Start `python -m orchestration.supervise OPTIONS -- python child.py` with its output in a file."""
    child = tmp_path / "child.py"
    child.write_text(textwrap.dedent(child_source))
    log = tmp_path / "supervise.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [PYTHON, "-m", "orchestration.supervise", *options, "--", PYTHON, str(child), str(tmp_path)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    return process, log


def stop_and_time(process: subprocess.Popen, log: Path, signum: int, limit: float) -> float:
    started = time.monotonic()
    os.kill(process.pid, signum)
    try:
        process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {limit:g} s after signal {signum}:\n{tail(log)}")
    return time.monotonic() - started


# ------------------------------------------------------------------------------------------------ the supervisor

IGNORES_SIGINT = """
    import os, signal, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(os.path.join(sys.argv[1], "pids.tmp"), "w") as f:
        f.write(f"{os.getpid()}\\n")
    os.rename(os.path.join(sys.argv[1], "pids.tmp"), os.path.join(sys.argv[1], "pids"))
    while True:
        time.sleep(1)
"""

# The child stops on SIGINT (Python's default KeyboardInterrupt); the grandchild it leaves in the group does not.
SPAWNS_GRANDCHILD = """
    import os, signal, subprocess, sys, time
    grandchild = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"]
    )
    time.sleep(0.3)  # lets the grandchild install its SIG_IGN before the test interrupts
    with open(os.path.join(sys.argv[1], "pids.tmp"), "w") as f:
        f.write(f"{os.getpid()} {grandchild.pid}\\n")
    os.rename(os.path.join(sys.argv[1], "pids.tmp"), os.path.join(sys.argv[1], "pids"))
    while True:
        time.sleep(1)
"""

# Stops on SIGINT by itself: reports which signal it got and exits 0.
CLEAN_ON_SIGINT = """
    import os, signal, sys, time
    def stop(signum, frame):
        with open(os.path.join(sys.argv[1], "got"), "w") as f:
            f.write(signal.Signals(signum).name)
        sys.exit(0)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with open(os.path.join(sys.argv[1], "pids"), "w") as f:
        f.write(f"{os.getpid()}\\n")
    while True:
        time.sleep(1)
"""

SLEEPS = """
    import os, sys, time
    with open(os.path.join(sys.argv[1], "pids"), "w") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(600)
"""


def pid_alive(pid: int) -> bool:
    return pid in live(processes())


@pytest.mark.parametrize("child_source", [IGNORES_SIGINT, SPAWNS_GRANDCHILD], ids=["ignores-sigint", "grandchild"])
def test_sigint_ends_child_and_its_group_within_the_grace_period(tmp_path, child_source):
    grace = 1.5
    process, log = supervise(tmp_path, child_source, "--grace", str(grace))
    pids: list[int] = []
    try:
        pids = [int(pid) for pid in wait_for_file(tmp_path / "pids", process, log).split()]
        child_pgid = os.getpgid(pids[0])
        assert child_pgid == pids[0] != os.getpgid(process.pid), "the child runs in its own process group"
        assert all(os.getpgid(pid) == child_pgid for pid in pids)

        took = stop_and_time(process, log, signal.SIGINT, grace + 2)
        print(f"\nsupervised child stopped after {took:.2f} s (grace {grace:g} s)")

        assert process.returncode == 130, tail(log)
        assert [pid for pid in pids if pid_alive(pid)] == [], f"left running:\n{tail(log)}"
        assert group_empty(child_pgid), survivors({}, {child_pgid})
        escalations = [line for line in log.read_text().splitlines() if "SIGKILL" in line]
        assert len(escalations) == 1, f"one line says it escalated to SIGKILL:\n{tail(log)}"
        assert took >= grace, "SIGKILL only after the grace period"
    finally:
        kill_group(process, set(pids))


def test_a_child_inheriting_ignored_sigint_still_stops_on_it_without_escalation(tmp_path):
    # As `cmd &` in a non-interactive shell starts it: SIGINT ignored, which exec passes on to the command.
    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    process, log = supervise(tmp_path, SLEEPS, "--grace", "20", preexec_fn=ignore_sigint)
    pids: list[int] = []
    try:
        pids = [int(wait_for_file(tmp_path / "pids", process, log))]
        took = stop_and_time(process, log, signal.SIGINT, 10)
        assert took < 5, f"the child's SIGINT was not restored to default ({took:.1f} s):\n{tail(log)}"
        assert process.returncode == 130, tail(log)
        assert "SIGKILL" not in log.read_text(), tail(log)
        assert not pid_alive(pids[0])
    finally:
        kill_group(process, set(pids))


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_reach_the_child_as_sigint(tmp_path, signum, status):
    process, log = supervise(tmp_path, CLEAN_ON_SIGINT, "--grace", "20")
    pids: list[int] = []
    try:
        pids = [int(wait_for_file(tmp_path / "pids", process, log))]
        stop_and_time(process, log, signum, 10)
        assert (tmp_path / "got").read_text() == "SIGINT", tail(log)
        assert process.returncode == status, tail(log)
        assert "SIGKILL" not in log.read_text(), tail(log)
    finally:
        kill_group(process, set(pids))


def test_exit_status_is_the_childs():
    def run(*args: str) -> subprocess.CompletedProcess:
        command = [PYTHON, "-m", "orchestration.supervise", *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)

    exits = run("--", PYTHON, "-c", "import sys; sys.exit(3)")
    assert exits.returncode == 3, exits.stderr
    killed = run("--", PYTHON, "-c", "import os; os.kill(os.getpid(), 9)")
    assert killed.returncode == 128 + 9, killed.stderr
    usage = run("true")
    assert usage.returncode == 2 and "--" in usage.stderr, usage.stderr


def test_import_changes_nothing():
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    import orchestration.supervise  # noqa: F401

    assert {signum: signal.getsignal(signum) for signum in before} == before


# ------------------------------------------------------------------------------------ dev.sh as a user runs it


def start_dev(tmp_path: Path, command: str, env_extra: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    """`./dev.sh COMMAND` in its own session, as a terminal's foreground job, with all state under tmp_path."""
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "orchestration" / "dagster_local.yaml", dagster_home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSD_")}  # MLSD_ENV_FILE and friends
    env.update(
        MLSD_STATE_DIR=str(tmp_path / "state"),
        DAGSTER_HOME=str(dagster_home),
        DAGSTER_DISABLE_TELEMETRY="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        GX_ANALYTICS_ENABLED="false",
        BENTOML_DO_NOT_TRACK="true",
        **env_extra,
    )
    log = tmp_path / f"dev-{command}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(ROOT / "dev.sh"), command],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


def wait_until_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert process.poll() is None, f"ended with {process.returncode} before {url} answered:\n{tail(log)}"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer 200 within {timeout:g} s:\n{tail(log)}")


def ctrl_c_stops_everything(process: subprocess.Popen, log: Path, port: int, name: str) -> None:
    tree = descendants(process.pid)
    pgids = {process.pid} | {p["pgid"] for p in tree.values()}
    assert len(pgids) > 1, f"{name} runs its server in a group of its own (the supervisor's child): {tree}"
    try:
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does to the foreground process group
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still running 10 s after Ctrl-C:\n{tail(log)}")
        took = time.monotonic() - started
        escalated = any(line.startswith("supervise:") for line in log.read_text(errors="replace").splitlines())
        print(
            f"\n{name}: stopped {took:.2f} s after Ctrl-C, exit status {process.returncode}, "
            f"{'escalated to SIGKILL' if escalated else 'no SIGKILL needed'}, {len(tree)} processes under dev.sh"
        )

        assert group_empty(process.pid), f"left in dev.sh's group: {survivors({}, {process.pid})}"
        left = survivors(tree, pgids)
        assert left == [], f"left running: {left}\n{tail(log)}"
        assert port_can_be_bound(port), f"port {port} is still held:\n{tail(log)}"
        assert process.returncode == 130, tail(log)
    finally:
        kill_group(process, pgids)


@pytest.mark.slow
def test_dev_ui_stops_on_ctrl_c(tmp_path):
    port = free_port()
    process, log = start_dev(tmp_path, "ui", {"MLSD_DAGSTER_PORT": str(port)})
    try:
        ready = wait_until_ready(f"http://127.0.0.1:{port}/server_info", process, log)
        print(f"\n./dev.sh ui: ready after {ready:.1f} s")
        ctrl_c_stops_everything(process, log, port, "./dev.sh ui")
    finally:
        kill_group(process)


@pytest.mark.slow
def test_dev_mlflow_ui_stops_on_ctrl_c(tmp_path):
    port = free_port()
    process, log = start_dev(
        tmp_path,
        "mlflow-ui",
        {"MLSD_MLFLOW_PORT": str(port), "MLSD_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    )
    try:
        ready = wait_until_ready(f"http://127.0.0.1:{port}/health", process, log)
        print(f"\n./dev.sh mlflow-ui: ready after {ready:.1f} s")
        ctrl_c_stops_everything(process, log, port, "./dev.sh mlflow-ui")
    finally:
        kill_group(process)
