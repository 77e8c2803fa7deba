"""The endpoint policy in one place: which ZeroMQ addresses are valid, and which never leave this computer.

Used by the clients (an address must name a transport they can use), the Blender
add-on (a backend on another machine needs Blender's "Allow Online Access") and
``emogene serve`` (binding anywhere but loopback needs a key file). Loopback is
``ipc://``, ``inproc://`` and ``tcp://`` on 127.0.0.0/8, ``::1`` or
``localhost``; wildcards (``*``, ``0.0.0.0``), interface and host names are not.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

#: transports a client may connect to
CLIENT_TRANSPORTS = ("tcp", "ipc", "inproc")
_LOCAL_TRANSPORTS = frozenset({"ipc", "inproc"})


@dataclass(frozen=True)
class AddressCheck:
    allowed: bool
    is_loopback: bool
    reason: str  # empty when allowed


def parse_endpoint(address: str) -> tuple[str, str]:
    """``(transport, host)`` of a ZeroMQ endpoint such as ``tcp://127.0.0.1:5555`` (host '' for ipc/inproc).

    Raises ``ValueError`` naming the problem: no transport, one other than tcp/ipc/inproc, no host.
    """
    if not isinstance(address, str) or "://" not in address:
        raise ValueError(f"backend address {address!r} needs a transport, e.g. tcp://127.0.0.1:5555")
    transport, rest = address.split("://", 1)
    transport = transport.lower()
    if transport in _LOCAL_TRANSPORTS:
        return transport, ""
    if transport != "tcp":
        raise ValueError(f"backend address {address!r}: transport {transport!r} is not supported "
                         "(use tcp:// or ipc://)")
    if rest.startswith("["):  # tcp://[::1]:5555
        host = rest[1:rest.index("]")] if "]" in rest else rest[1:]
    else:
        host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    if not host:
        raise ValueError(f"backend address {address!r} has no host")
    return transport, host


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False   # '*', an interface name or a host name: may be reachable from outside


def is_loopback_endpoint(address: str) -> bool:
    """True for ipc:// / inproc:// and for tcp:// on a loopback host; False for everything else (never raises)."""
    try:
        transport, host = parse_endpoint(address.strip())
    except (ValueError, AttributeError):
        return False
    return transport in _LOCAL_TRANSPORTS or is_loopback_host(host)


def check_address(address: str, online_access: bool) -> AddressCheck:
    """May a Blender add-on connect to ``address``? Never raises; the reason says why not."""
    try:
        transport, host = parse_endpoint(address.strip())
    except (ValueError, AttributeError) as exc:
        return AddressCheck(False, False, str(exc))
    local = transport in _LOCAL_TRANSPORTS or is_loopback_host(host)
    if local or online_access:
        return AddressCheck(True, local, "")
    return AddressCheck(
        False, False,
        f"Backend {host} is on another machine and Blender's online access is off. "
        "Turn on Preferences > System > Network > Allow Online Access, "
        "or run the backend on this computer (tcp://127.0.0.1:5555).")


def check_client_endpoint(address: str) -> None:
    """``ValueError`` unless ``address`` starts with a transport a client can connect to."""
    if not isinstance(address, str) or not address.startswith(tuple(f"{t}://" for t in CLIENT_TRANSPORTS)):
        raise ValueError(f"backend address {address!r} must start with tcp://, ipc:// or inproc://")
