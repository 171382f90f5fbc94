"""Shared test fixtures: the real data in ../shared (skipped when absent), a temporary store,
and running the CLI as a user would."""
from __future__ import annotations

import os
import subprocess
import sys
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
