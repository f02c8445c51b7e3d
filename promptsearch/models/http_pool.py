"""Requests to one or more replicas of a served model: a bounded pool of threads, retries with backoff
on timeouts, 429 and 5xx (waiting at least what a Retry-After header asks, within a cap), and failures reported in
one line naming the server. Stdlib only."""

from __future__ import annotations

import datetime
import email.utils
import http.client
import itertools
import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from ..errors import PromptSearchError

log = logging.getLogger(__name__)

API_KEY_VARIABLES = ("PROMPTSEARCH_API_KEY", "OPENAI_API_KEY")
# The largest answer read: a 5000-entry top-k list is ~140 KB and an echoed 4k-token prompt ~1 MB, so this
# leaves room for long prompts while a server sending without end cannot fill the memory.
MAX_RESPONSE_BYTES = 64 * 2**20
ERROR_BODY_BYTES = 4096  # of an error answer only the message is shown
# A rate-limited server's Retry-After is honoured up to this many seconds a try (the waits stay under a minute with
# the default three retries); a server asking for longer is reported at once rather than retried too early.
MAX_RETRY_AFTER = 20.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: urllib would resend the Authorization header to wherever the server points,
    another host included. A redirect surfaces as its HTTP status and is reported with its target."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class ServerError(PromptSearchError):
    """A server did not answer usably (after retries where retrying makes sense)."""

    def __init__(self, url: str, what: str):
        self.url = url
        key = api_key()
        if key and len(key) >= 4 and key in what:  # a server that echoes the key back (an error body, a
            what = what.replace(key, "***")      # garbage answer) must not have it printed
        super().__init__(f"server {url}: {what}")


class _Retryable(Exception):
    def __init__(self, what: str, wait: float | None = None):
        self.what = what
        self.wait = wait  # seconds the server asked for (Retry-After), if it said


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date; None when absent or unreadable
    (a negative, non-finite or garbled value is no request at all)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        return max(0.0, seconds)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def api_key() -> str | None:
    """The API key, from the environment only: it is never a flag, and never written anywhere."""
    for name in API_KEY_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


class HttpPool:
    """POST/GET JSON to base URLs (replicas of one model), spreading requests round-robin."""

    def __init__(self, urls: list[str], concurrency: int = 4, timeout: float = 120.0, retries: int = 3,
                 backoff: float = 0.5):
        if not urls:
            raise PromptSearchError("no server URL given")
        from .urls import check_url

        self.urls = [check_url(u) for u in urls]
        self.concurrency = max(1, int(concurrency))
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sent = 0  # requests answered by a server (not counting failed tries)
        self.failed_tries = 0
        self._next = itertools.cycle(range(len(self.urls)))
        self._lock = threading.Lock()
        self._executor = None
        self._broken = None  # the first ServerError of a map(): later queued requests stop at once
        self._answered: set[str] = set()  # URLs that answered at least once (a refusal after that is a dead server)

    def _pick(self, attempt: int) -> str:
        with self._lock:
            return self.urls[next(self._next)] if attempt == 0 or len(self.urls) > 1 else self.urls[0]

    def request(self, path: str, body: dict | None = None, root: bool = False) -> tuple[str, object]:
        """(URL that answered, decoded JSON). ``root``: the path hangs off the server root, not /v1."""
        last_url, last = self.urls[0], "no answer"
        for attempt in range(self.retries + 1):
            if self._broken is not None:
                raise self._broken
            url = self._pick(attempt)
            last_url = url
            try:
                answer = self._once(url, path, body, root)
                with self._lock:
                    self.sent += 1
                    self._answered.add(url)
                return url, answer
            except _Retryable as e:
                last = e.what
                with self._lock:
                    self.failed_tries += 1
                if attempt < self.retries:
                    if e.wait is not None and e.wait > MAX_RETRY_AFTER:
                        raise ServerError(url, f"{e.what} (it asks to wait {e.wait:.0f} s before a retry, longer than "
                                               f"the {MAX_RETRY_AFTER:.0f} s promptsearch waits; try again later)")
                    delay = max(e.wait or 0.0, self.backoff * 2 ** attempt)
                    log.debug("server %s: %s; retrying in %.1f s", url, e.what, delay)
                    time.sleep(delay)
        tries = f" (after {self.retries + 1} tries)" if self.retries else ""
        if last.startswith("cannot connect") and last_url in self._answered:
            # It answered before and now refuses: the server process most likely died (a crash in the
            # backend, an OOM kill), which "cannot connect" alone would hide behind a network-looking error.
            last = f"stopped answering: {last}; it answered earlier in this run, so its process has likely exited"
        raise ServerError(last_url, f"{last}{tries}")

    def _once(self, url: str, path: str, body, root: bool):
        base = url[: -len("/v1")] if root and url.endswith("/v1") else url
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        key = api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(base + path, data=data, headers=headers, method="POST" if body is not None else "GET")
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
                raw = _read_capped(resp, url, path)
        except urllib.error.HTTPError as e:
            if 300 <= e.code < 400:
                from .urls import redact

                target = redact(e.headers.get("Location") or "?")
                raise ServerError(url, f"HTTP {e.code} on {path}: redirects to {target}; redirects are not followed "
                                       "(the API key goes only to the URL given): give the final URL with --model") from None
            detail = _first_line(e.read(ERROR_BODY_BYTES).decode("utf-8", "replace"))
            if e.code == 429 or e.code >= 500:
                raise _Retryable(f"HTTP {e.code} on {path}{detail}", retry_after(e.headers.get("Retry-After"))) from None
            hint = " (is this the server's /v1 URL?)" if e.code == 404 else ""
            raise ServerError(url, f"HTTP {e.code} on {path}{hint}{detail}") from None
        except TimeoutError:
            raise _Retryable(f"no answer within {self.timeout:g} s on {path}") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise _Retryable(f"no answer within {self.timeout:g} s on {path}") from None
            reason = getattr(e.reason, "strerror", None) or str(e.reason)
            raise _Retryable(f"cannot connect ({reason})") from None
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            raise _Retryable(f"connection lost on {path} ({type(e).__name__})") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ServerError(url, f"answered {path} with something that is not JSON: {raw[:60]!r}") from None
        except RecursionError:
            raise ServerError(url, f"answered {path} with JSON nested too deeply") from None

    def map(self, fn, items: list) -> list:
        """fn over items on the bounded pool, results in order. On the first failure the queued rest is
        dropped and that failure raised; answers already received stay wherever fn put them (the cache)."""
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="promptsearch-http")
        self._broken = None
        futures = [self._executor.submit(fn, x) for x in items]
        try:
            return [f.result() for f in futures]
        except BaseException as e:
            if isinstance(e, ServerError):
                self._broken = e
            for f in futures:
                f.cancel()
            for f in futures:
                if not f.cancelled():
                    try:
                        f.result()
                    except BaseException:
                        pass
            raise
        finally:
            self._broken = None


def _read_capped(resp, url: str, path: str) -> bytes:
    """The body, refused once it passes MAX_RESPONSE_BYTES (announced or as it arrives)."""
    limit = MAX_RESPONSE_BYTES
    announced = resp.headers.get("Content-Length")
    if announced and announced.isdigit() and int(announced) > limit:
        raise ServerError(url, f"answered {path} with {int(announced) / 2**20:.0f} MiB; answers are capped at {limit // 2**20} MiB")
    raw = resp.read(limit + 1)
    if len(raw) > limit:
        raise ServerError(url, f"answered {path} with more than {limit // 2**20} MiB; answers are capped there")
    return raw


def _first_line(text: str, width: int = 160) -> str:
    try:  # OpenAI-style {"error": {"message": ...}} or {"detail": ...}
        obj = json.loads(text)
        if isinstance(obj, dict):
            err = obj.get("error", obj.get("detail", obj))
            text = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except (ValueError, RecursionError):
        pass
    line = " ".join(text.split())
    return (": " + line[:width]) if line else ""
