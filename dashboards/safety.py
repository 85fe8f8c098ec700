"""Server hardening of the dashboard: Host allow-list, request body limit, no server paths in messages.

Dash runs on Flask (``app.server``). :func:`install_guards` adds a ``before_request`` hook that refuses
requests whose ``Host`` header names another machine (DNS rebinding: a web page on another site must not
reach a dashboard on 127.0.0.1 through its own host name) and bodies above :data:`MAX_BODY_BYTES`
(Flask's ``MAX_CONTENT_LENGTH`` also stops chunked bodies while they are read). :func:`public_text` turns
absolute paths in messages into paths relative to the results folder or the project.
"""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Iterable

__all__ = ["LOOPBACK_NAMES", "MAX_BODY_BYTES", "allowed_hosts_for", "host_name", "install_guards", "is_loopback",
           "public_text"]

MAX_BODY_BYTES = 1_000_000  # the largest callback request of the shipped pages is a few kB
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str | None) -> str:
    """The host part of a ``Host`` header, lower case, without port or IPv6 brackets ("" when malformed)."""
    h = (header or "").strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else ""
    name = h.rsplit(":", 1)[0] if h.count(":") == 1 else h
    return name if re.fullmatch(r"[a-z0-9._:-]{1,253}", name or "") else ""


def allowed_hosts_for(bind: str, extra: Iterable[str] = ()) -> set[str]:
    """Host names a server bound to ``bind`` answers to: loopback names, the bound address unless it is a
    wildcard (0.0.0.0, ::), and the names given with ``--allow-host``."""
    names = set(LOOPBACK_NAMES)
    b = bind.strip("[]").lower()
    if b and b not in ("0.0.0.0", "::", ""):
        names.add(b)
    names |= {host_name(x) or x.lower() for x in extra if x}
    return names


def install_guards(server, allowed_hosts: Iterable[str], max_body: int = MAX_BODY_BYTES) -> None:
    """Refuse foreign Host headers (403) and bodies above ``max_body`` bytes (413) on a Flask ``server``."""
    from flask import request

    allowed = frozenset(h.lower() for h in allowed_hosts)
    server.config["MAX_CONTENT_LENGTH"] = int(max_body)
    server.config["citytwin_allowed_hosts"] = allowed

    @server.before_request
    def _guard():
        if host_name(request.headers.get("Host")) not in allowed:
            return ("Refused: this CityTwin dashboard answers only to " + ", ".join(sorted(allowed))
                    + " (start it with --allow-host NAME to add a name)\n", 403, {"Content-Type": "text/plain"})
        if request.content_length is not None and request.content_length > max_body:
            return (f"Refused: request body above {max_body:,} bytes\n", 413, {"Content-Type": "text/plain"})
        return None


def public_text(msg: str, roots: Iterable[str | Path] = ()) -> str:
    """``msg`` with absolute paths made relative to ``roots`` (results folder, ...) or the project, else cut to
    their file name: pages never show where files live on the server."""
    from twin.scenario import PROJECT_ROOT

    folders = [Path(r).resolve() for r in roots] + [PROJECT_ROOT]

    def rel(m: re.Match) -> str:
        p = Path(m.group(0))
        for root in folders:
            try:
                return str(p.resolve().relative_to(root))
            except (ValueError, OSError):
                continue
        return p.name or "…"

    return re.sub(r"(?<![\w.])/(?:[^\s'\"(),;:<>\[\]]+/?)+", rel, str(msg))
