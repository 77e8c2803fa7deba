"""Bridge overhead against raw pyzmq, measured in the same run on the same sockets.

1. Round-trip latency of small messages (ping -> pong), median and p99.
2. Throughput of a stream of 512x512 RGBA plates (raw uint8 arrays, 1 MiB each) from
   the backend process to the client process.

"raw" sends the very same bytes with plain ``send_multipart``/``recv_multipart``, the way that is fastest in
pyzmq for each size (copies for the small round trip, zero-copy frames for plates);
"bridge" does the whole path per message: build Message, serialize (+ the keyed MAC with a
key), send, receive, verify, deserialize (and, keyed, the server's replay check).
"raw-mac" is the floor of a signed round trip: the raw frames plus the keyed MAC signed and checked on both
sides, no bridge code.
Both run twice: without a key (the loopback default) and with one (required off
loopback). With ``--curve``, a second backend with CURVE encryption measures raw
bytes and signed bridge messages over an encrypted socket. Prints a table of ratios
(bridge / raw; issue 13 asks <= 1.5x for the signed round trip). Runs are interleaved and the median run of each is
reported, so load from other processes hits every mode alike. The round trip's CPU time
(client + backend, waiting not counted) is printed too: on a loaded machine it is the
steadier measure of what the bridge costs.

    .venv/bin/python scripts/bench_bridge.py [--transport tcp|ipc] [--messages 3000] [--plates 100] [--curve]
        [--placement os|same-core|two-cores]
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import multiprocessing as mp
import os
import statistics
import tempfile
import time

import numpy as np
import zmq

from backend.server.replay import ReplayGuard
from bridge.messages import Message
from bridge.protocol import Limits
from bridge.wire import deserialize, receive, send, serialize

KEY = b"benchmark-key-0123456789abcdef01"
#: the "raw + MAC" floor: the bridge's keyed MAC (BLAKE2b-256, keyed once, copied per message) and nothing else
MAC = hashlib.blake2b(key=KEY, digest_size=32)


def _mac(head: bytes) -> bytes:
    mac = MAC.copy()
    mac.update(head)
    return mac.digest()
LIMITS = Limits(max_message_bytes=64 * 1024 * 1024)


#: --placement: the CPUs of (client, backend). On 2 cores the scheduler either keeps the two processes on one
#: core or spreads them, and the raw round trip differs ~2x between the two; pinning measures each alike.
PLACEMENTS: dict[str, tuple[set[int] | None, set[int] | None]] = {
    "os": (None, None), "same-core": ({0}, {0}), "two-cores": ({0}, {1})}


def _pin(cpus: set[int] | None) -> None:
    """Pin this process (and the threads it starts afterwards, e.g. ZeroMQ's I/O thread) to ``cpus``."""
    if cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


def _backend(address: str, ready, curve_secret: bytes | None = None, cpus: set[int] | None = None) -> None:
    """The backend side: a ROUTER answering commands (echo / pong / plate streams)."""
    _pin(cpus)
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.SNDHWM, 1000)
    if curve_secret is not None:
        router.curve_server = True
        router.curve_secretkey = curve_secret
    router.bind(address)
    guard = ReplayGuard()
    ready.set()
    while True:
        route, *frames = router.recv_multipart(copy=False)
        command = frames[0].bytes
        if command == b"stop":
            break
        if command == b"raw-echo":           # echo N messages back (bytes in, bytes out: pyzmq's fastest for small)
            count = int(frames[1].bytes)
            router.send_multipart([route, b"ok"])
            cpu = time.thread_time()
            for _ in range(count):
                router.send_multipart(router.recv_multipart())   # [route, *frames]
            router.send_multipart([route, repr(time.thread_time() - cpu).encode()])   # this side's CPU seconds
        elif command == b"mac-echo":          # raw + sign/verify the head: the MAC's own cost, no bridge code
            count = int(frames[1].bytes)
            router.send_multipart([route, b"ok"])
            cpu = time.thread_time()
            for _ in range(count):
                route_i, tag, head, signature = router.recv_multipart()
                assert hmac.compare_digest(_mac(head), signature)
                router.send_multipart([route_i, tag, head, _mac(head)])
            router.send_multipart([route, repr(time.thread_time() - cpu).encode()])
        elif command in (b"bridge-echo", b"bridge-echo-key"):
            key = KEY if command.endswith(b"key") else None
            count = int(frames[1].bytes)
            router.send_multipart([route, b"ok"])
            cpu = time.thread_time()
            for _ in range(count):
                route_i, *parts = receive(router, routing_frames=1)   # as the server does
                msg = deserialize(parts, key, LIMITS)
                if key:
                    guard.check(msg)
                send(router, serialize(msg.reply("pong"), key), route=route_i)   # as the server does
            router.send_multipart([route, repr(time.thread_time() - cpu).encode()])
        elif command in (b"raw-plates", b"bridge-plates", b"bridge-plates-key"):
            count, size = int(frames[1].bytes), int(frames[2].bytes)
            plate = np.random.default_rng(0).integers(0, 256, (size, size, 4), dtype=np.uint8)
            key = KEY if command.endswith(b"key") else None
            if command == b"raw-plates":
                prepared = [bytes(f) for f in serialize(Message("plate", {"frame": 0}, [plate]), None)]
                for _ in range(count):
                    router.send_multipart([route.bytes, *prepared], copy=False)
            else:
                for i in range(count):
                    msg = Message("plate", {"frame": i}, [plate])
                    send(router, serialize(msg, key), route=route.bytes)
    router.close(0)
    ctx.term()


def _dealer(ctx: zmq.Context, address: str, server_key: bytes | None = None) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVHWM, 1000)
    if server_key is not None:
        s.curve_serverkey = server_key
        s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
    s.connect(address)
    return s


def _target(mode: str, addresses: dict) -> tuple[str, str, bytes | None]:
    """(backend mode, address, CURVE server key) of a measured mode; '-curve' modes use the CURVE backend."""
    if mode.endswith("-curve"):
        return mode[:-len("-curve")], addresses["curve"], addresses["curve_key"]
    return mode, addresses["plain"], None


def latency(ctx, addresses: dict, mode: str, count: int) -> tuple[list[float], float]:
    """Round-trip times (s) and the CPU seconds per round trip of both sides together (blocking not counted:
    the cost that load from other processes does not inflate)."""
    mode, address, server_key = _target(mode, addresses)
    sock = _dealer(ctx, address, server_key)
    try:
        key = KEY if mode == "bridge-key" else None
        command = {"raw": b"raw-echo", "raw-mac": b"mac-echo", "bridge": b"bridge-echo",
                   "bridge-key": b"bridge-echo-key"}[mode]
        sock.send_multipart([command, str(count).encode()])
        sock.recv_multipart()
        prepared = [bytes(f) for f in serialize(Message("ping"), KEY)]
        times = []
        cpu = time.thread_time()
        for _ in range(count):
            start = time.perf_counter()
            if mode == "raw":
                sock.send_multipart(prepared)
                sock.recv_multipart()
            elif mode == "raw-mac":
                sock.send_multipart([prepared[0], prepared[1], _mac(prepared[1])])
                tag, head, signature = sock.recv_multipart()
                assert hmac.compare_digest(_mac(head), signature)
            else:
                sent = Message("ping")
                send(sock, serialize(sent, key))   # as the clients do
                reply = deserialize(receive(sock), key, LIMITS)
                assert reply.parent_id == sent.msg_id
            times.append(time.perf_counter() - start)
        cpu = time.thread_time() - cpu
        backend_cpu = float(sock.recv_multipart()[-1])
        return times, (cpu + backend_cpu) / count
    finally:
        sock.close(0)


def throughput(ctx, addresses: dict, mode: str, count: int, size: int) -> float:
    """Seconds from asking for ``count`` plates until the last one is received (and verified, decoded)."""
    mode, address, server_key = _target(mode, addresses)
    sock = _dealer(ctx, address, server_key)
    try:
        key = KEY if mode == "bridge-key" else None
        command = {"raw": b"raw-plates", "bridge": b"bridge-plates", "bridge-key": b"bridge-plates-key"}[mode]
        checksum = 0
        start = time.perf_counter()
        sock.send_multipart([command, str(count).encode(), str(size).encode()])
        for _ in range(count):
            if mode == "raw":   # zero-copy: pyzmq's fastest for big frames
                checksum += len(sock.recv_multipart(copy=False)[-1].buffer)
            else:
                checksum += deserialize(receive(sock), key, LIMITS).array(0).nbytes
        elapsed = time.perf_counter() - start
        assert checksum == count * size * size * 4
        return elapsed
    finally:
        sock.close(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transport", choices=("tcp", "ipc"), default="tcp")
    parser.add_argument("--messages", type=int, default=3000, help="round trips per latency run")
    parser.add_argument("--plates", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=15,
                        help="runs per measure, interleaved; the median run is reported")
    parser.add_argument("--curve", action="store_true", help="also measure over a CURVE-encrypted socket")
    parser.add_argument("--placement", choices=sorted(PLACEMENTS), default="os",
                        help="where client and backend run: as the OS schedules them (default), pinned to one "
                             "core, or pinned to two cores")
    args = parser.parse_args()
    client_cpus, backend_cpus = PLACEMENTS[args.placement]
    if args.placement != "os" and (not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2):
        parser.error("--placement needs os.sched_setaffinity and at least 2 CPUs")

    def endpoint(port: int, name: str) -> str:
        return (f"tcp://127.0.0.1:{port}" if args.transport == "tcp"
                else f"ipc://{tempfile.mkdtemp(prefix='emogene-bench-')}/{name}.sock")

    address = endpoint(5799, "bench")
    addresses = {"plain": address}
    spawn = mp.get_context("spawn")
    backends = []
    ready = spawn.Event()
    backends.append(spawn.Process(target=_backend, args=(address, ready, None, backend_cpus), daemon=True))
    backends[-1].start()
    ready.wait(30)
    modes: tuple[str, ...] = ("raw", "raw-mac", "bridge", "bridge-key")
    if args.curve:
        public, secret = zmq.curve_keypair()
        addresses.update(curve=endpoint(5798, "curve"), curve_key=public)
        ready = spawn.Event()
        backends.append(spawn.Process(target=_backend, args=(addresses["curve"], ready, secret, backend_cpus),
                                      daemon=True))
        backends[-1].start()
        ready.wait(30)
        modes += ("raw-curve", "bridge-key-curve")
    _pin(client_cpus)
    ctx = zmq.Context()
    lat: dict[str, list[list[float]]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    thr: dict[str, list[float]] = {m: [] for m in modes}
    try:
        latency(ctx, addresses, "raw", 200)   # warm-up
        for _ in range(args.repeats):      # interleaved, so background load hits all modes alike
            for mode in modes:
                times, cpu_per_trip = latency(ctx, addresses, mode, args.messages)
                lat[mode].append(times)
                cpu[mode].append(cpu_per_trip)
                if mode != "raw-mac":   # latency only: the floor of a signed round trip
                    thr[mode].append(throughput(ctx, addresses, mode, args.plates, args.size))
    finally:
        stoppers = [_dealer(ctx, address)]
        if args.curve:
            stoppers.append(_dealer(ctx, addresses["curve"], addresses["curve_key"]))
        for stopper in stoppers:
            stopper.send(b"stop")
        for backend in backends:
            backend.join(10)
        for stopper in stoppers:
            stopper.close(0)
        ctx.term()

    def median_run(values: list[list[float]], pick) -> float:
        return statistics.median(pick(v) for v in values)

    median_ms = {m: median_run(lat[m], lambda t: statistics.median(t) * 1e3) for m in modes}
    p99_ms = {m: median_run(lat[m], lambda t: float(np.percentile(t, 99)) * 1e3) for m in modes}
    cpu_us = {m: statistics.median(cpu[m]) * 1e6 for m in modes}
    plate_mb = args.plates * args.size * args.size * 4 / 1e6
    mb_per_s = {m: plate_mb / statistics.median(thr[m]) for m in modes if thr[m]}
    fps = {m: args.plates / statistics.median(thr[m]) for m in modes if thr[m]}

    print(f"bridge benchmark over {args.transport} ({args.messages} round trips, {args.plates} plates of "
          f"{args.size}x{args.size} RGBA = {plate_mb:.0f} MB; median of {args.repeats} interleaved runs; "
          f"placement {args.placement})")
    header = f"{'measure':<28}{'raw pyzmq':>12}{'bridge':>12}{'ratio':>8}{'bridge+MAC':>13}{'ratio':>8}"
    print(header)
    print("-" * len(header))

    def row(name, values, fmt, lower_is_better=True):
        raw, plain, signed = values["raw"], values["bridge"], values["bridge-key"]
        ratio = (lambda v: v / raw) if lower_is_better else (lambda v: raw / v)
        print(f"{name:<28}{fmt.format(raw):>12}{fmt.format(plain):>12}{ratio(plain):>7.2f}x"
              f"{fmt.format(signed):>13}{ratio(signed):>7.2f}x")

    row("round trip median (ms)", median_ms, "{:.3f}")
    row("round trip p99 (ms)", p99_ms, "{:.3f}")
    row("CPU per round trip (us)", cpu_us, "{:.1f}")
    row("plate stream (MB/s)", mb_per_s, "{:.0f}", lower_is_better=False)
    row("plate stream (plates/s)", fps, "{:.0f}", lower_is_better=False)
    print("ratio = bridge cost / raw cost (time ratio; for throughput raw/bridge). "
          "Issue 13: signed round trip <= 1.5x.")
    print("CPU per round trip: client + backend thread CPU time, waiting not counted (robust to other load).")
    print(f"raw + MAC only (raw frames, the keyed MAC signed and checked on both sides, no bridge code): round trip "
          f"{median_ms['raw-mac']:.3f} ms = {median_ms['raw-mac'] / median_ms['raw']:.2f}x raw, CPU "
          f"{cpu_us['raw-mac']:.1f} us = {cpu_us['raw-mac'] / cpu_us['raw']:.2f}x")
    print("load average at the end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("per interleaved run (each bridge run / the raw run just before it): median [quartiles] (range)")
    for name, pick, values in (("round trip median", lambda t: statistics.median(t), lat),
                               ("CPU per round trip", lambda c: c, cpu)):
        for mode in ("raw-mac", "bridge", "bridge-key"):
            ratios = [pick(b) / pick(r) for b, r in zip(values[mode], values["raw"])]
            print(f"  {name:<20} {mode:<11}" + _spread(ratios))
    if args.curve:
        print("CURVE (encrypted socket), against raw pyzmq without encryption:")
        for name, values, better in (("round trip median (ms)", median_ms, True),
                                     ("round trip p99 (ms)", p99_ms, True),
                                     ("plate stream (MB/s)", mb_per_s, False)):
            raw = values["raw"]
            cells = []
            for mode in ("raw-curve", "bridge-key-curve"):
                v = values[mode]
                cells.append(f"{mode} {v:.3f} = {(v / raw if better else raw / v):.2f}x")
            print(f"  {name:<26}" + "   ".join(cells))


def _spread(ratios: list[float]) -> str:
    if len(ratios) < 2:
        return f" {ratios[0]:.2f}x"
    q1, q2, q3 = statistics.quantiles(ratios, n=4)
    return f" {q2:.2f}x [{q1:.2f}-{q3:.2f}] ({min(ratios):.2f}-{max(ratios):.2f})"


if __name__ == "__main__":
    main()
