"""Shared test fixtures: the real data in ../shared (skipped when absent), a temporary store,
and running the CLI as a user would."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDCURATE_SHARED", REPO.parent / "shared"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# EHR versions need the user's secret for patient pseudonyms (reproducible builds); tests use their own.
os.environ.setdefault("MEDCURATE_DEID_SECRET", "medcurate-tests-only-secret")


def shared_path(*parts: str) -> Path:
    """A path inside ../shared, skipping the test with the reason when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not present: {path} (../shared is only beside CI and developer checkouts)")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def run_medcurate(*args: str, cwd: Path | None = None, env: dict | None = None, check: bool = False,
                  timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m medcurate ARGS`` from a source checkout, as a user would."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-m", "medcurate", *args], cwd=cwd, env=full_env,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"medcurate {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def missing_service(reason: str) -> None:
    """Skip on a developer's machine without an optional server; in CI, which installs every one
    the tests use (Label Studio, transformers[serving]), that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def transformers_cli() -> Path:
    """The ``transformers`` command of this venv (``transformers serve`` needs transformers[serving])."""
    binary = Path(sys.executable).parent / "transformers"
    if not binary.exists():
        missing_service("transformers[serving] is not installed (no `transformers` command beside python)")
    return binary


@contextlib.contextmanager
def served(command: list[str], url: str, log_path: Path, *, name: str, timeout: float,
           env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[None]:
    """Start a server on 127.0.0.1, wait for ``URL/health``, and stop its process group by pid at the end."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}; log: {log_path}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not become healthy within {timeout:.0f} s; log: {log_path}")
            time.sleep(0.5)
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

