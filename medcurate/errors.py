"""User-facing errors: one line naming file, line and field, never a traceback.

Messages must never carry record text (patient privacy): name the record id,
the location and the reason only.
"""
from __future__ import annotations


class MedcurateError(Exception):
    """An error caused by the user's input or configuration, shown as one line."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self.format())

    def __reduce__(self):
        """Pickled whole (a build's worker process sends it back with its file, line and field)."""
        return _rebuild, (type(self), self.message, self.file, self.line, self.field)

    def in_file(self, file: str) -> None:
        """Name ``file`` when the error names none yet (raised deep inside a reader or parser)."""
        if self.file is None:
            self.file = file
            self.args = (self.format(),)

    def format(self) -> str:
        location = ""
        if self.file:
            location = str(self.file)
            if self.line is not None:
                location += f":{self.line}"
        if self.field:
            location = f"{location}:{self.field}" if location else self.field
        return f"{location}: {self.message}" if location else self.message


class ConservationError(MedcurateError):
    """The manifest's counts do not add up: some record was lost or invented."""


def _rebuild(kind: type[MedcurateError], message: str, file: str | None, line: int | None,
             field: str | None) -> MedcurateError:
    return kind(message, file=file, line=line, field=field)
