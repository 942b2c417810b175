"""User-facing errors: one line that names the file, line or argument and the fix."""


class UnisrError(Exception):
    """An error caused by user input; the CLI prints it as one line and exits with code 2."""


class InputFileError(UnisrError):
    """A malformed or missing input file, optionally pointing at one line."""

    def __init__(self, path, problem: str, fix: str = "", line: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        message = f"{where}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)
        self.path = path
        self.line = line


class UnisrWarning(UserWarning):
    """Something was wrong but unisr could go on (a corrupt cache entry, say); the CLI prints it as one `warning:` line."""
