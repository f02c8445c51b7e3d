"""Starting the app: where it listens, whether it needs a token, and the one line that says where it is."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from ..errors import PromptSearchError

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Plan:
    host: str
    port: int
    token: str | None
    hosts: set[str] | None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")


def plan(host: str, port: int) -> Plan:
    """Check the address is free (a clear line now, not a traceback later) and decide on the token: none on
    loopback, where only local users reach it; a fresh random one on any other address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host.strip("[]"), port))
        except OSError as e:
            what = "is in use" if e.errno == 98 else f"cannot be used ({e.strerror or e})"
            raise PromptSearchError(f"{host}:{port} {what}; choose another with --port (0: any free port)") from None
        port = s.getsockname()[1]
    if is_loopback(host):
        shown = [host, "127.0.0.1", "localhost", "[::1]"] if host != "::1" else ["[::1]", "localhost"]
        return Plan(host, port, None, {f"{h}:{port}" for h in shown})
    return Plan(host, port, secrets.token_urlsafe(24), None)


def serve(roots, host: str = "127.0.0.1", port: int = 8765, registry: Path | None = None, announce=print) -> None:
    """Run the server until Ctrl-C. ``announce`` gets the address line (with the token, printed only there)."""
    import uvicorn

    from .app import make_app

    where = plan(host, port)
    app = make_app(roots, registry=registry, token=where.token, hosts=where.hosts)
    announce(where)
    uvicorn.run(app, host=where.host.strip("[]"), port=where.port, log_level="warning", access_log=False)


class Background:
    """The app on a loopback port in a thread of this process (tests, benchmarks, screenshots): ``start`` returns
    once it accepts connections, ``stop`` shuts it down."""

    def __init__(self, roots, registry: Path | None = None, token: str | None = None, port: int = 0):
        import uvicorn

        from .app import make_app

        where = plan("127.0.0.1", port)
        self.port, self.token = where.port, token
        self.app = make_app(roots, registry=registry, token=token, hosts=None if token else where.hosts)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False))
        self.thread = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 20.0) -> Background:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + wait
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the ui server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
