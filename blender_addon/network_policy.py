"""Whether the add-on may connect to a backend address, given Blender's "Allow Online Access".

Blender asks extensions not to touch the network unless the user allowed online
access (``bpy.app.online_access``). A backend on this machine is not online
access: loopback TCP (127.0.0.0/8, ::1, ``localhost``) and ``ipc://`` sockets
never leave the computer, so they are always allowed. Any other host needs
online access turned on (Preferences > System > Network).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class AddressCheck:
    allowed: bool
    is_loopback: bool
    reason: str  # empty when allowed


def parse_host(address: str) -> tuple[str, str]:
    """``(transport, host)`` of a ZeroMQ endpoint such as ``tcp://127.0.0.1:5555``."""
    if "://" not in address:
        raise ValueError(f"backend address {address!r} needs a transport, e.g. tcp://127.0.0.1:5555")
    transport, rest = address.split("://", 1)
    transport = transport.lower()
    if transport in {"ipc", "inproc"}:
        return transport, ""
    if transport != "tcp":
        raise ValueError(f"backend address {address!r}: transport {transport!r} is not supported (use tcp:// or ipc://)")
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
        return False


def check_address(address: str, online_access: bool) -> AddressCheck:
    """May the add-on connect to ``address``? Never raises; the reason says why not."""
    try:
        transport, host = parse_host(address.strip())
    except ValueError as exc:
        return AddressCheck(False, False, str(exc))
    local = transport in {"ipc", "inproc"} or is_loopback_host(host)
    if local or online_access:
        return AddressCheck(True, local, "")
    return AddressCheck(
        False, False,
        f"Backend {host} is on another machine and Blender's online access is off. "
        "Turn on Preferences > System > Network > Allow Online Access, "
        "or run the backend on this computer (tcp://127.0.0.1:5555).")
