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
