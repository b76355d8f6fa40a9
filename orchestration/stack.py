"""The local production stack: PostgreSQL, Redis, the MLflow tracking server, the Dagster webserver and daemon.

    python -m orchestration.stack up              start whatever is not running yet (safe to run twice)
    python -m orchestration.stack down            stop all of it, leaving no process behind (safe to run twice)
    python -m orchestration.stack status
    python -m orchestration.stack stop SERVICE    stop one service (postgres, redis, mlflow, dagster-webserver,
                                                  dagster-daemon); `up` starts it again

Its configuration is the production environment file (`MLSD_ENV_FILE`, default `.mlsd/production/production.env`):
every URL and credential comes from there. `up` writes that file with a fresh random password when it does not exist.
A service whose URL points at another host is someone else's (a managed database, say) and is left alone. Everything
binds to 127.0.0.1; data, logs and pid files live in the stack folder (`MLSD_STACK_DIR`, default
`$MLSD_STATE_DIR/stack`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from assets import health
from orchestration.settings import PROJECT_ROOT

DEFAULT_ENV_FILE = PROJECT_ROOT / ".mlsd" / "production" / "production.env"
WORKSPACE = PROJECT_ROOT / "orchestration" / "workspace.yaml"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Every process the stack starts carries this variable, so a leftover can be found by its environment.
STACK_MARKER = "MLSD_STACK_ID"
# As dev.sh sets them: telemetry off, no progress bars in logs, no model downloads.
PROCESS_DEFAULTS = {
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "BENTOML_DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "HF_HUB_OFFLINE": "1",
}


INSTANCE_FILE_MARK = "# Dagster instance of "  # the first words of the project's instance files


class StackError(RuntimeError):
    pass


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments are skipped. The same file `set -a; . file` reads in dev.sh."""
    values = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise StackError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def write_env_file(
    path: Path,
    state_dir: Path,
    postgres_port: int = 5433,
    redis_port: int = 6380,
    mlflow_port: int = 5000,
    dagster_port: int = 3000,
    extra: Mapping[str, str] | None = None,
) -> Path:
    """A production environment file for a stack on this machine, with a new random password (hex: shell-safe)."""
    password = secrets.token_hex(16)
    pg = f"postgresql+psycopg2://mlsd:{password}@127.0.0.1:{postgres_port}"
    redis = f"redis://:{password}@127.0.0.1:{redis_port}"
    lines = [
        "# mlsd production mode: the local stack (./dev.sh stack up). Holds a password: keep it out of git.",
        f"MLSD_STATE_DIR={state_dir}",
        f"DAGSTER_HOME={state_dir / 'dagster'}",
        f"MLSD_DAGSTER_POSTGRES_URL={pg}/mlsd_dagster",
        f"MLSD_DAGSTER_PORT={dagster_port}",
        f"MLSD_MLFLOW_BACKEND_STORE_URI={pg}/mlsd_mlflow",
        f"MLSD_MLFLOW_ARTIFACTS_DESTINATION={state_dir / 'stack' / 'mlflow-artifacts'}",
        f"MLSD_MLFLOW_TRACKING_URI=http://127.0.0.1:{mlflow_port}",
        f"MLSD_MLFLOW_UI_URL=http://127.0.0.1:{mlflow_port}",
        f"MLSD_ONLINE_STORE_URL={redis}/0",
        f"MLSD_STREAM_URL={redis}/1",
        *(f"{key}={value}" for key, value in (extra or {}).items()),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.chmod(0o600)
    temporary.replace(path)
    return path


def _alive(pid: int) -> bool:
    """Running and not a zombie (nothing may reap an orphan here, and a zombie holds no port or file)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def processes_with_marker(stack_id: str) -> list[int]:
    """Live processes started by the stack with this id (read from their environment)."""
    needle = f"{STACK_MARKER}={stack_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0") and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
    return found


def _wait(condition, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = ""
            if log is not None and log.exists():
                tail = "\n  last lines of " + str(log) + ":\n    " + "\n    ".join(log.read_text().splitlines()[-15:])
            raise StackError(f"{what} did not come up within {timeout:.0f}s{tail}")
        time.sleep(0.25)


@dataclass
class Stack:
    env: dict[str, str]  # the environment file's values
    folder: Path

    @classmethod
    def from_env_file(cls, path: Path) -> Stack:
        env = read_env_file(path)
        missing = [k for k in ("MLSD_STATE_DIR", "DAGSTER_HOME", "MLSD_DAGSTER_POSTGRES_URL", "MLSD_MLFLOW_TRACKING_URI",
                               "MLSD_ONLINE_STORE_URL") if not env.get(k)]
        if missing:
            raise StackError(f"{path}: missing {', '.join(missing)} (see orchestration/production.env.example)")
        for key in ("MLSD_DAGSTER_POSTGRES_URL", "MLSD_MLFLOW_BACKEND_STORE_URI"):
            if urlparse(env.get(key, "")).scheme == "postgresql":
                # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which this stack does not install.
                raise StackError(f"{path}: {key} must name its driver: postgresql+psycopg2://...")
        folder = Path(env.get("MLSD_STACK_DIR") or Path(env["MLSD_STATE_DIR"]) / "stack")
        return cls(env=env, folder=folder)

    @property
    def stack_id(self) -> str:
        return str(self.folder.resolve())

    def process_env(self) -> dict[str, str]:
        env = {**os.environ, **self.env, **PROCESS_DEFAULTS, STACK_MARKER: self.stack_id}
        env["PYTHONPATH"] = f"{PROJECT_ROOT}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(PROJECT_ROOT)
        # The stack's own settings for its servers; the pipelines read the MLSD_* ones.
        for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            env.pop(key, None)
        return env

    def services(self) -> list[Service]:
        services: list[Service] = []
        pg = urlparse(self.env["MLSD_DAGSTER_POSTGRES_URL"])
        if pg.hostname in LOCAL_HOSTS:
            services.append(Postgres(self))
        redis = urlparse(self.env["MLSD_ONLINE_STORE_URL"])
        if redis.scheme == "redis" and redis.hostname in LOCAL_HOSTS:
            services.append(Redis(self))
        mlflow = urlparse(self.env["MLSD_MLFLOW_TRACKING_URI"])
        if mlflow.scheme == "http" and mlflow.hostname in LOCAL_HOSTS and self.env.get("MLSD_MLFLOW_BACKEND_STORE_URI"):
            services.append(MlflowServer(self))
        services += [DagsterWebserver(self), DagsterDaemon(self)]
        return services

    def service(self, name: str) -> Service:
        for service in self.services():
            if service.name == name:
                return service
        raise StackError(f"no service {name!r} in this stack: {', '.join(s.name for s in self.services())}")

    def prepare(self) -> None:
        for sub in ("logs", "run"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        home = Path(self.env["DAGSTER_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        template, instance = PROJECT_ROOT / "orchestration" / "dagster_postgres.yaml", home / "dagster.yaml"
        # The instance file follows the template while it is one of the project's (as ./dev.sh keeps the local one).
        if not instance.exists() or (instance.read_text().startswith(INSTANCE_FILE_MARK)
                                     and instance.read_text() != template.read_text()):
            shutil.copyfile(template, instance)

    def up(self) -> None:
        self.prepare()
        for service in self.services():
            pid = service.pid()
            if pid:
                print(f"{service.name}: already running (pid {pid}) {service.address()}", flush=True)
                continue
            started = time.monotonic()
            service.start()
            print(f"{service.name}: started in {time.monotonic() - started:.1f}s (pid {service.pid()}) "
                  f"{service.address()}", flush=True)

    def down(self) -> None:
        for service in reversed(self.services()):
            print(f"{service.name}: {'stopped' if service.stop() else 'not running'}", flush=True)
        leftovers = processes_with_marker(self.stack_id)
        if leftovers:
            for pid in leftovers:
                os.kill(pid, signal.SIGKILL)
            print(f"killed {len(leftovers)} leftover process(es): {leftovers}", flush=True)

    def status(self) -> bool:
        all_up = True
        for service in self.services():
            pid = service.pid()
            all_up &= bool(pid)
            print(f"{service.name}: {'running (pid %d)' % pid if pid else 'stopped'} {service.address()}")
        return all_up


class Service:
    name: str
    url_key: str | None = None  # the environment file's URL of this service
    default_port: int = 0

    def __init__(self, stack: Stack):
        self.stack = stack
        self.url = urlparse(stack.env[self.url_key]) if self.url_key else None
        self.data = stack.folder / self.name
        self.log = stack.folder / "logs" / f"{self.name}.log"
        self.pid_file = stack.folder / "run" / f"{self.name}.pid"

    def address(self) -> str:
        if self.url is None:
            return ""
        return f"{self.url.scheme.split('+')[0]}://{self.url.hostname}:{self.url.port or self.default_port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return True

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)  # stale: the process is gone
        return None

    def extra_env(self) -> dict[str, str]:
        return {}

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0  # readiness reads this start's lines
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                self.command(), cwd=PROJECT_ROOT, env={**self.stack.process_env(), **self.extra_env()},
                stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))

        def ready() -> bool:
            if process.poll() is not None:
                raise StackError(f"{self.name} exited with code {process.returncode}; see {self.log}:\n    "
                                 + "\n    ".join(self.log.read_text().splitlines()[-15:]))
            return self.ready()

        _wait(ready, 120, self.name, self.log)

    def stop(self, timeout: float = 30) -> bool:
        """SIGINT to the whole process group, then SIGKILL what is still there after `timeout`."""
        pid = self.pid()
        if pid is None:
            return False
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout / 2
            while _group_members(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not _group_members(pid):
                break
        for member in _group_members(pid):
            os.kill(member, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


def _give_to_postgres(*paths: Path) -> None:
    """As root, what PostgreSQL writes or reads must belong to its user."""
    if os.geteuid() == 0:
        for path in paths:
            shutil.chown(path, "postgres", "postgres")


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user of Debian's package."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        raise StackError(f"PostgreSQL's {name} was not found: install Debian's postgresql package "
                         "(./dev.sh setup does it when run as root)")
    return str(candidates[-1])


class Postgres(Service):
    name = "postgres"
    url_key = "MLSD_DAGSTER_POSTGRES_URL"
    default_port = 5432

    def _databases(self) -> list[str]:
        names = [self.url.path.lstrip("/")]
        mlflow = self.stack.env.get("MLSD_MLFLOW_BACKEND_STORE_URI")
        if mlflow and urlparse(mlflow).hostname in LOCAL_HOSTS:
            names.append(urlparse(mlflow).path.lstrip("/"))
        return names

    def pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError, PermissionError):
            return None
        return pid if _alive(pid) else None

    def _initdb(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        password_file = self.data.parent / ".pgpass-init"
        password_file.write_text(self.url.password or "")
        password_file.chmod(0o600)
        if os.geteuid() == 0:
            self.data.parent.chmod(0o755)
        _give_to_postgres(self.data, password_file)
        try:
            completed = subprocess.run(
                _as_postgres_user([postgres_bin("initdb"), "-D", str(self.data), "-U", self.url.username or "mlsd",
                                   f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8",
                                   "--no-instructions"]),
                capture_output=True, text=True,
            )
        finally:
            password_file.unlink(missing_ok=True)
        if completed.returncode != 0:
            raise StackError(f"initdb failed: {completed.stderr.strip()}")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\ninclude_if_exists = 'mlsd.conf'\n")

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        # Rewritten at every start, so a changed port in the environment file takes effect.
        conf = self.data / "mlsd.conf"
        conf.write_text(f"listen_addresses = '127.0.0.1'\nport = {self.url.port or self.default_port}\n"
                        "unix_socket_directories = ''\n")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        _give_to_postgres(conf, self.log)
        completed = subprocess.run(
            _as_postgres_user([postgres_bin("pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log), "-w",
                               "-t", "60"]),
            env=self.stack.process_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        if completed.returncode != 0:
            tail = "\n    ".join(self.log.read_text().splitlines()[-10:])
            raise StackError(f"postgres did not start: {completed.stderr.strip()}\n    {tail}")
        self._create_databases()

    def _create_databases(self) -> None:
        import psycopg2

        connection = psycopg2.connect(host=self.url.hostname, port=self.url.port or self.default_port, user=self.url.username,
                                      password=self.url.password, dbname="postgres", connect_timeout=10)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                for name in self._databases():
                    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                    if cursor.fetchone() is None:
                        cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()

    def stop(self, timeout: float = 30) -> bool:
        if self.pid() is None:
            return False
        completed = subprocess.run(
            _as_postgres_user([postgres_bin("pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w",
                               "-t", str(int(timeout))]),
            capture_output=True, text=True,
        )
        if completed.returncode != 0:
            raise StackError(f"postgres did not stop: {completed.stderr.strip()}")
        return True


class Redis(Service):
    name = "redis"
    url_key = "MLSD_ONLINE_STORE_URL"
    default_port = 6379

    def command(self) -> list[str]:
        server = shutil.which("redis-server")
        if server is None:
            raise StackError("redis-server was not found: install Debian's redis-server package "
                             "(./dev.sh setup does it when run as root)")
        self.data.mkdir(parents=True, exist_ok=True)
        conf = self.data / "redis.conf"
        # Append-only persistence: the online features survive a restart. The password stays out of `ps`.
        lines = [
            "bind 127.0.0.1", f"port {self.url.port or self.default_port}", "protected-mode yes", "daemonize no",
            f"dir {self.data}", "appendonly yes", "appendfsync everysec", 'save ""',
        ]
        if self.url.password:
            lines.append(f"requirepass {self.url.password}")
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o600)
        return [server, str(conf)]

    def ready(self) -> bool:
        return health.answers(health.redis_server, self.stack.env[self.url_key], timeout=1)


class MlflowServer(Service):
    name = "mlflow"
    url_key = "MLSD_MLFLOW_TRACKING_URI"
    default_port = 5000

    def command(self) -> list[str]:
        return [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
                "--port", str(self.url.port or self.default_port), "--workers", "1"]

    def extra_env(self) -> dict[str, str]:
        artifacts = Path(self.stack.env.get("MLSD_MLFLOW_ARTIFACTS_DESTINATION") or self.stack.folder / "mlflow-artifacts")
        artifacts.mkdir(parents=True, exist_ok=True)
        return {
            # The backend URI holds the password: it goes through the environment, not the command line.
            "MLFLOW_BACKEND_STORE_URI": self.stack.env["MLSD_MLFLOW_BACKEND_STORE_URI"],
            "MLFLOW_ARTIFACTS_DESTINATION": str(artifacts),
            # Lean: one worker and no job-runner processes (they would outlive a stop).
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }

    def ready(self) -> bool:
        return health.answers(health.mlflow_server, self.url.geturl(), timeout=2)


class DagsterWebserver(Service):
    name = "dagster-webserver"

    def port(self) -> int:
        return int(self.stack.env.get("MLSD_DAGSTER_PORT", "3000"))

    def address(self) -> str:
        return f"http://127.0.0.1:{self.port()}"

    def command(self) -> list[str]:
        return [str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(WORKSPACE),
                "-h", "127.0.0.1", "-p", str(self.port())]

    def ready(self) -> bool:
        return health.answers(health.http_ok, f"{self.address()}/server_info", timeout=2)


class DagsterDaemon(Service):
    """Runs schedules, sensors, the run queue and backfills."""

    name = "dagster-daemon"

    def command(self) -> list[str]:
        return [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(WORKSPACE)]

    def ready(self) -> bool:
        with open(self.log, "rb") as log:
            log.seek(self.log_offset)
            return b"Instance is configured with the following daemons" in log.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "stop"])
    parser.add_argument("service", nargs="?", help="stop: which service")
    args = parser.parse_args(argv)
    env_file = Path(os.environ.get("MLSD_ENV_FILE") or DEFAULT_ENV_FILE)
    try:
        if not env_file.exists():
            if args.command != "up":
                print(f"{env_file} does not exist: nothing was started", flush=True)
                return 0
            if os.environ.get("MLSD_ENV_FILE"):
                raise StackError(f"MLSD_ENV_FILE={env_file} does not exist")
            write_env_file(env_file, env_file.parent)
            print(f"wrote {env_file} (new random password; never commit it)", flush=True)
        stack = Stack.from_env_file(env_file)
        if args.command == "up":
            stack.up()
            print(f"production mode: MLSD_ENV_FILE={env_file} ./dev.sh run   (Dagster UI "
                  f"http://127.0.0.1:{stack.env.get('MLSD_DAGSTER_PORT', '3000')}, MLflow UI "
                  f"{stack.env['MLSD_MLFLOW_TRACKING_URI']})", flush=True)
        elif args.command == "down":
            stack.down()
        elif args.command == "stop":
            if not args.service:
                parser.error("stop needs a service name")
            print(f"{args.service}: {'stopped' if stack.service(args.service).stop() else 'not running'}")
        else:
            return 0 if stack.status() else 3
    except StackError as error:
        print(f"stack {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
