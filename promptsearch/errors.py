"""The one exception type users see: its message is printed as a single line, never a traceback."""


class PromptSearchError(Exception):
    """Bad input or an unusable setting, explained in one line that names the file, line or field."""


class TooLongError(PromptSearchError):
    """A rendered prompt does not fit the model's context. For a user's own prompt this is an
    error; a search drops a generated candidate that hits it and goes on."""


class RunInterrupted(PromptSearchError):
    """A run stopped by a fault outside it (its model server, its workers). Everything scored before is
    logged, so resuming the run later continues where it stopped."""
