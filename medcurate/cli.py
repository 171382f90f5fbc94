"""The ``medcurate`` command line: a thin layer over the library.

Feature command groups live beside their code (``medcurate/kg/cli.py`` …) and are
imported only when invoked, so ``medcurate datasets list`` never pays for torch or
jieba. A user mistake prints one line naming file, line and field and exits 2.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from medcurate import __version__
from medcurate.errors import MedcurateError

# command name -> "module:attribute"; each module defines a click command or group.
LAZY_COMMANDS = {
    "build": "medcurate.commands:build_command",
    "datasets": "medcurate.commands:datasets_group",
    "steps": "medcurate.commands:steps_command",
    "kg": "medcurate.kg.cli:kg",
    "deid": "medcurate.deid.cli:deid",
    "cmedins": "medcurate.cmedins.cli:cmedins",
    "ehr": "medcurate.ehr.cli:ehr",
    "annotate": "medcurate.annotate.cli:annotate",
    "train": "medcurate.train.cli:train",
    "model": "medcurate.train.cli:model",
    "evaluate": "medcurate.evaluate.cli:evaluate",
    "lineage": "medcurate.lineage_cli:lineage_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(name for name in LAZY_COMMANDS if self._available(name))

    @staticmethod
    def _available(name: str) -> bool:
        module = LAZY_COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx, name):
        if name not in LAZY_COMMANDS:
            return None
        module_name, attribute = LAZY_COMMANDS[name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attribute, None)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="medcurate")
def cli():
    """medcurate: raw Chinese medical sources -> versioned training datasets -> annotation -> training."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="medcurate", standalone_mode=False)
    except MedcurateError as exc:
        click.echo(f"medcurate: error: {exc.format()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("medcurate: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("medcurate: interrupted", err=True)
        sys.exit(130)
