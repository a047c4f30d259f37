"""Exception types. Every message says which file/field is wrong, what was expected, how to fix it."""


class MedsslError(Exception):
    """Base class for errors that the CLI reports as one clear line (no traceback)."""


class ConfigError(MedsslError, ValueError):
    """An unknown name, key or value in a configuration or command line."""


class DataError(MedsslError, ValueError):
    """Bad input data: names the file (and row) and what was expected."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None) -> None:
        where = ""
        if file is not None:
            where = f"{file}"
            if row is not None:
                where += f" (row {row})"
            where += ": "
        super().__init__(where + message)
        self.file = file
        self.row = row
        self.reason = message


class TrainingError(MedsslError, RuntimeError):
    """A training run that cannot continue (NaN loss, collapse, incompatible resume)."""


class OutputExistsError(MedsslError, FileExistsError):
    """An output folder that already exists and was not to be replaced."""
