"""Server URLs as the user gives them: http(s) only, and never with credentials inside (user:password@ would
be written to config.json, logs and the model's name). ``redact`` hides them in any message that must
show a URL someone else wrote (a redirect target, a URL read from a file)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ..errors import PromptSearchError


def redact(url: str) -> str:
    """The URL with any user:password@ replaced by ***@ and any query string by ?***."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "(an unreadable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def check_url(url: str, where: str = "--model") -> str:
    """The URL without a trailing slash, or one line saying why it is refused (the URL shown redacted)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        raise PromptSearchError(f"{where}: {redact(url)} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PromptSearchError(f"{where}: {redact(url)} must be an http(s)://HOST[:PORT]/v1 URL")
    if parts.username is not None or parts.password is not None:
        raise PromptSearchError(f"{where}: {redact(url)} holds credentials; they would be saved in config.json and logs. "
                                "Give the key in PROMPTSEARCH_API_KEY (sent as a Bearer token) and the URL without them")
    if parts.query or parts.fragment:
        raise PromptSearchError(f"{where}: {redact(url)}: a server URL takes no query string or fragment")
    return url.rstrip("/")


def split_urls(spec: str, where: str = "--model") -> list[str]:
    """Comma-separated replica URLs, each checked."""
    urls = [u.strip() for u in str(spec).split(",") if u.strip()]
    if not urls:
        raise PromptSearchError(f"{where}: no server URL given")
    return [check_url(u, where) for u in urls]
