"""Ships the top-level data folders (templates/, annotation/, training/) inside the wheel.

They live at the repository root, one folder per concern, and are copied to
``medcurate/_data/<folder>`` at build time so a non-editable install can read
them through importlib.resources from any working directory.
"""
import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_FOLDERS = ("templates", "annotation", "training")


class BuildWithDataFolders(build_py):
    def run(self):
        super().run()
        root = pathlib.Path(__file__).resolve().parent
        for folder in DATA_FOLDERS:
            target = pathlib.Path(self.build_lib) / "medcurate" / "_data" / folder
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(root / folder, target, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildWithDataFolders})
