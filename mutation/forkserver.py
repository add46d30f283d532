"""A process that has pytest and the heavy libraries imported, and forks a child per run.

A fresh pytest spends most of its start importing pytest, Django, DRF, cryptography
and the test helpers' libraries; byok itself is small. This server imports those
once, but never byok nor Django's settings: each forked child puts its worker's copy
of byok first on ``sys.path`` and runs pytest, so every mutant still starts from a
clean import of byok and a fresh test database.

Protocol, one JSON line each way: ``{"place", "args", "timeout"}`` in,
``{"code", "output"}`` out (``code`` is ``null`` after a timeout).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time

#: Imported once here, shared by every child. None of them reads Django's settings
#: at import time, none imports byok, and none is a plugin pytest loads with ``-p``
#: (pytest would warn that it cannot rewrite its assertions).
PRELOAD = (
    "pytest",
    "_pytest.config",
    "_pytest.python",
    "_pytest.fixtures",
    "django.db.models",
    "django.test",
    "django.core.management",
    "cryptography.hazmat.primitives.kdf.hkdf",
    "requests",
    "responses",
    "factory",
    "hypothesis",
    "schemathesis",
)


def serve() -> None:
    # ``python -m`` put the checkout first on the path: its byok must never be found.
    sys.path[:] = [entry for entry in sys.path if entry not in ("", os.getcwd())]
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    for line in sys.stdin:
        job = json.loads(line)
        code, output = run(job["place"], job["args"], job["timeout"])
        print(json.dumps({"code": code, "output": output}), flush=True)


def run(place: str, args: list[str], timeout: float) -> tuple[int | None, str]:
    with tempfile.TemporaryFile(mode="w+") as log:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.setsid()
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            os.environ["PYTHONPATH"] = place  # for the subprocesses some tests start
            sys.path.insert(0, place)
            import pytest

            code = pytest.main(args)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(int(code))
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None, ""
            time.sleep(0.05)
        log.seek(0)
        return os.waitstatus_to_exitcode(status), log.read()[-2000:]


if __name__ == "__main__":
    serve()
