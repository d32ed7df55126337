"""Errors a user can act on. The CLI turns them into one line on stderr and an exit code."""


class BiotagError(Exception):
    """An error with a message for the user and a process exit code."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(BiotagError):
    """Bad input file or argument (exit code 2)."""

    exit_code = 2


class FormatError(InputError):
    """A file does not follow its declared format; the message names file:line."""

    def __init__(self, message: str, path=None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.line = line


class ModelError(BiotagError):
    """A model file or bundle is missing, altered or unusable (exit code 3)."""

    exit_code = 3
