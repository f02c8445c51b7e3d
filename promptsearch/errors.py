"""The one exception type users see: its message is printed as a single line, never a traceback."""


class PromptSearchError(Exception):
    """Bad input or an unusable setting, explained in one line that names the file, line or field."""
