"""A whole stack of our own on loopback, for the soak and the fault suites: a PostgreSQL
cluster and a Redis server on spare ports (never the machine's shared ones), an SMTP sink,
gunicorn, a Celery worker and beat. Every process is stopped when the `with` block ends.

    with Stack(tmp_dir) as stack:
        stack.manage("migrate")
        stack.start_web(); stack.start_worker(); stack.start_beat()
        ...

Needs PostgreSQL's server binaries (initdb, pg_ctl) and redis-server; run as root, the
cluster is owned by the `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port} within {timeout:.0f} s")


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (KiB), from /proc."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


class SmtpSink:
    """An aiosmtpd server on loopback that keeps every message (the "sink" of
    reliability.md A7). `mode` makes it refuse: "ok", "451" (transient), "550" (permanent)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[bytes] = []
        self.mode = "ok"
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
                if sink.mode == "550":
                    return "550 5.1.1 user unknown"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                if sink.mode == "451":
                    return "451 4.3.0 try again later"
                sink.messages.append(envelope.content)
                return "250 Message accepted"

        self.port = spare_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class BlackHole:
    """Accepts TCP connections and never answers (an SMTP server that hangs)."""

    def __init__(self) -> None:
        self.port = spare_port()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)
        self.held: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self.sock.settimeout(0.5)
        while not self._stop:
            with contextlib.suppress(OSError):
                conn, _ = self.sock.accept()
                self.held.append(conn)

    def __enter__(self) -> BlackHole:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        for c in self.held:
            c.close()
        self.sock.close()


class Stack:
    def __init__(self, workdir: Path, *, extra_env: dict[str, str] | None = None) -> None:
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pg_port, self.redis_port, self.web_port = spare_port(), spare_port(), spare_port()
        self.pg_dir = self.dir / "pg"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")},
            "DJANGO_SETTINGS_MODULE": "config.settings.base", "DEBUG": "false", "HTTPS_ONLY": "false",
            "SECRET_KEY": "stack-secret-key-0123456789-0123456789-0123456789",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{self.pg_port}/stack",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "VAR_DIR": str(self.dir / "var"), "STATIC_ROOT": str(self.dir / "static"),
            "EMAIL_URL": "smtp://127.0.0.1:1", "EMAIL_TIMEOUT": "3",
            "AXES_ENABLED": "false", "OTP_REQUIRED_ROLES": "", "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }

    # --- services -------------------------------------------------------------------------

    def start_postgres(self) -> None:
        if not (self.pg_dir / "PG_VERSION").exists():
            self.pg_dir.mkdir(parents=True, exist_ok=True)
            self._as_postgres(["initdb", "-D", str(self.pg_dir), "-A", "trust", "-U", "postgres", "--no-sync"])
        self._as_postgres(["pg_ctl", "-D", str(self.pg_dir), "-w", "-l", str(self.pg_dir / "log"), "start", "-o",
                           f"-p {self.pg_port} -k {self.pg_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                           "-c max_connections=100"])
        wait_for_port(self.pg_port)
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-qc",
                        "CREATE DATABASE stack"], check=False, capture_output=True)

    def stop_postgres(self, mode: str = "fast") -> None:
        self._as_postgres(["pg_ctl", "-D", str(self.pg_dir), "-m", mode, "-w", "stop"], check=False)

    def _as_postgres(self, cmd: list[str], check: bool = True) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            for path in self.pg_dir.rglob("*") if self.pg_dir.exists() else []:
                with contextlib.suppress(OSError):
                    shutil.chown(path, "postgres")
            shutil.chown(self.pg_dir, "postgres")
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=check, capture_output=True, timeout=120)

    def start_redis(self, persist: bool = False) -> None:
        args = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--save", "", "--appendonly", "yes" if persist else "no", "--maxmemory-policy", "noeviction"]
        self.procs["redis"] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.redis_port)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig) if name != "redis" else proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL) if name != "redis" else proc.kill()
            proc.wait(timeout=10)

    # --- the app --------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 1800) -> str:
        result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                                timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def _spawn(self, name: str, cmd: list[str], **env: str) -> subprocess.Popen:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_web(self, workers: int = 2) -> None:
        self._spawn("web", [PY, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.web_port}",
                            "--workers", str(workers), "--timeout", "120"])
        wait_for_port(self.web_port, timeout=60)

    def start_worker(self, name: str = "worker", queues: str = "celery", **env: str) -> subprocess.Popen:
        proc = self._spawn(name, [PY, "-m", "celery", "-A", "config", "worker", "--concurrency=1", "--loglevel=INFO",
                                  "--without-gossip", "--without-mingle", "-n", f"{name}@%h", "-Q", queues], **env)
        self.wait_for_log(name, "ready.")
        return proc

    def start_beat(self, **env: str) -> None:
        self._spawn("beat", [PY, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
                             "-s", str(self.dir / "celerybeat-schedule")], **env)

    def wait_for_log(self, name: str, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        path = self.dir / f"{name}.log"
        while time.monotonic() < deadline:
            if path.exists() and text in path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not log {text!r} within {timeout:.0f} s (see {path})")

    def psql(self, sql: str) -> str:
        result = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-d", "stack",
                                 "-tAc", sql], capture_output=True, text=True, timeout=60, check=False)
        return result.stdout.strip()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    # --- context --------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        self.start_postgres()
        self.start_redis()
        return self

    def __exit__(self, *exc) -> None:
        for name in list(self.procs):
            if name != "redis":
                self.stop(name)
        self.stop("redis")
        self.stop_postgres("immediate")
