"""Errors that siteml reports to the user, each naming where the bad input is."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_PIPELINE_FAILURE = 1
EXIT_INVALID_INPUT = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file.

    Attributes:
        file: The file as the user named it.
        line: 1-based line of the offending YAML node, or None when it has no line.
        path: Dotted YAML path (``training.epochs``, ``task.classes.2``); empty for the document.
        message: What is wrong, in words a user can act on.
        origin: Where the value came from when not from the file (``--set``).
    """

    file: str
    line: int | None
    path: str
    message: str
    origin: str | None = None

    def __str__(self) -> str:
        return self.beside(None)

    def beside(self, file: str | None) -> str:
        """As ``str``, but without the file name when it is ``file``: in a row that names it
        already (``line 3: training.epochs: ...``)."""
        if self.file != file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        else:
            where = "" if self.line is None else f"line {self.line}"
        if self.origin:
            where = f"{where} ({self.origin})".lstrip()
        return ": ".join(part for part in (where, self.path, self.message) if part)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for ``--json`` output."""
        return {"file": self.file, "line": self.line, "path": self.path,
                "message": self.message, "origin": self.origin}


class SitemlError(Exception):
    """Base of the errors siteml reports without a traceback."""

    exit_code = EXIT_PIPELINE_FAILURE


class InvalidInputError(SitemlError):
    """The user's input (a file, an argument, a model reference) is invalid: exit code 2."""

    exit_code = EXIT_INVALID_INPUT


class ScenarioError(InvalidInputError):
    """A scenario or site file has one or more problems; all of them are listed together."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
