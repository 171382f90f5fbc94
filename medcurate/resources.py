"""Access to the data folders shipped with medcurate (templates, annotation configs, training recipes).

Installed wheels carry them under ``medcurate/_data/``; a source checkout reads the
top-level folders directly, so the same call works in both.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

DATA_FOLDERS = ("templates", "annotation", "training")


def data_folder(folder: str) -> Path:
    """Return the directory holding one shipped data folder."""
    if folder not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {folder!r}; expected one of {DATA_FOLDERS}")
    installed = Path(str(resources.files("medcurate"))) / "_data" / folder
    if installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parent.parent / folder
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"medcurate data folder {folder!r} is missing from this installation")


def data_file(folder: str, relative: str) -> Path:
    """Return a file inside a shipped data folder, with a clear error when it is absent."""
    path = data_folder(folder) / relative
    if not path.exists():
        raise FileNotFoundError(f"{folder}/{relative} is not shipped with medcurate")
    return path
