"""Starting the servers and workers of the multi-process tests, and stopping them.

Every process gets a timeout and is ended (its whole process group) when the test
ends, whatever happened.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from django.db import connection

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url():
    """The URL of the test database this test process uses, for the others."""
    settings = connection.settings_dict
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[connection.vendor]
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return (
        f"{scheme}://{settings['USER']}{password}@{settings['HOST'] or '127.0.0.1'}{port}/"
        f"{settings['NAME']}"
    )


def environment(**extra):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "server_settings",
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT / "example_project")]),
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def manage(*args, env, timeout=120):
    """Run a management command in a process of its own; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextmanager
def started(commands, *, env, log_dir):
    """Start each command (a list of arguments) in its own process group; stop them all."""
    processes, files = [], []
    try:
        for number, command in enumerate(commands):
            log = open(Path(log_dir) / f"process-{number}.log", "w")  # noqa: SIM115
            files.append(log)
            processes.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                    start_new_session=True,
                )
            )
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        for log in files:
            log.close()


def logs(log_dir):
    return "\n".join(path.read_text() for path in sorted(Path(log_dir).glob("*.log")))


def wait_until_serving(url, processes, log_dir, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise AssertionError("a server stopped:\n" + logs(log_dir))
        try:
            requests.get(url, timeout=10)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout} s:\n" + logs(log_dir))


def wait_for_exit(processes, log_dir, timeout=180):
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"a worker ran over {timeout} s:\n" + logs(log_dir)) from None
        assert process.returncode == 0, logs(log_dir)
