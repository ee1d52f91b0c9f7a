#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Issue 8: SYN cookies with real kernel TCP on both sides (docs/security.md, "SYN cookies").

The seed topology with three TCP VIPs: web :80 (cookies off, the baseline), web-cookies :81
(`syncookies: on`, the same four HTTP backends) and echo :82 (`syncookies: on`, one
python echo server in the backends' namespace that speaks first: a greeting line, then it
echoes until the client closes).

  a. HTTP through the cookie VIP: 40 one-connection requests, every one answered, in
     rotation; rondo counted a cookie sent and a cookie ACK accepted for each connection
     and no invalid cookie, and says cookies are active. The time per request next to the plain VIP's shows the cost
     (the client's first data segment reaches rondo before the backend's SYN-ACK does and
     is dropped; the client resends it after its retransmission timeout).
  b. A server that speaks first and 4 MiB each way, byte for byte: the greeting crosses
     right after the handshake, then data both ways at once (sequence translation, window
     rescaling). What the client's kernel negotiated is checked against what the cookie
     keeps: SACK on, window scaling on, no timestamps, MSS 1460.
  c. Forged cookie ACKs (a raw socket in the client namespace, random acknowledgement
     numbers) are dropped as syncookie_invalid and open no flow.
"""

import hashlib
import json
import os
import random
import socket
import statistics
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import packets as P  # noqa: E402

COOKIE_PORT = 81
ECHO_PORT = 82
ECHO_BACKEND = 3100
ECHO_BYTES = 4 << 20


# ---- client side (runs in a namespace) ----

def client_timed(args):
    """Sequential requests, one connection each, to VIP:port; the time each took."""
    ports, errors, secs = [], [], []
    for i in range(args.count):
        t0 = time.monotonic()
        try:
            with socket.create_connection((harness.VIP, args.port), timeout=5.0) as s:
                ports.append(harness.http_exchange(s, "/", close=False))
            secs.append(time.monotonic() - t0)
        except OSError as e:
            errors.append(f"request {i}: {harness.err_text(e)}")
    return {"ports": ports, "errors": errors, "secs": secs}


def _args_timed(p):
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)


def client_echoserver(args):
    """The echo backend: a greeting line on accept, then every byte back until EOF."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", args.port))
    srv.listen(16)

    def serve(c):
        with c:
            c.sendall(f"hello from echo :{args.port}\n".encode())
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def _args_echoserver(p):
    p.add_argument("--port", type=int, required=True)


def tcp_info(s):
    """(options, snd_wscale, rcv_wscale, snd_mss) from TCP_INFO (linux/tcp.h)."""
    b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
    snd_mss = struct.unpack_from("I", b, 16)[0]
    return b[5], b[6] & 0x0f, b[6] >> 4, snd_mss


def client_echo(args):
    """Read the greeting, then send args.bytes while reading them back; compare."""
    errors = []
    rng = random.Random(args.seed)
    data = bytes(rng.getrandbits(8) for _ in range(min(args.bytes, 1 << 16)))
    data = (data * (args.bytes // len(data) + 1))[:args.bytes]
    # A pattern that does not repeat at a power of two: a shifted copy cannot pass.
    data = bytes(b ^ (i % 251) for i, b in enumerate(data))
    t0 = time.monotonic()
    s = socket.create_connection((harness.VIP, args.port), timeout=10.0)
    greeting = b""
    while not greeting.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            errors.append("connection closed before the greeting")
            break
        greeting += chunk
    t_greet = time.monotonic() - t0
    got = bytearray()

    def reader():
        try:
            while len(got) < len(data):
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                got.extend(chunk)
        except OSError as e:
            errors.append(f"reading: {harness.err_text(e)}")

    r = threading.Thread(target=reader)
    r.start()
    try:
        s.sendall(data)
    except OSError as e:
        errors.append(f"sending: {harness.err_text(e)}")
    r.join(60)
    opts, snd_ws, rcv_ws, mss = tcp_info(s)
    s.close()
    if bytes(got) != data:
        first = next((i for i, (x, y) in enumerate(zip(got, data)) if x != y), min(len(got), len(data)))
        errors.append(f"echo differs: {len(got)} of {len(data)} bytes back, first difference at {first}")
    return {"errors": errors, "greeting": greeting.decode(errors="replace"),
            "greeting_s": t_greet, "seconds": time.monotonic() - t0,
            "sha": hashlib.sha256(bytes(got)).hexdigest()[:16],
            "want_sha": hashlib.sha256(data).hexdigest()[:16],
            "options": opts, "snd_wscale": snd_ws, "rcv_wscale": rcv_ws, "snd_mss": mss}


def _args_echo(p):
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--seed", type=int, default=8)


def client_forge(args):
    """Bare ACKs to VIP:port from ports no connection uses, with random ack numbers: what
    a blind attacker guessing cookies sends. The kernel adds the IP header."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    src, dst = socket.inet_aton(harness.CLIENT_IP), socket.inet_aton(harness.VIP)
    rng = random.Random(args.seed)
    for i in range(args.count):
        sport = 20000 + i
        h = struct.pack("!HHIIBBHHH", sport, args.port, rng.getrandbits(32),
                        rng.getrandbits(32), 5 << 4, 0x10, 65535, 0, 0)
        c = P.csum(src + dst + struct.pack("!BBH", 0, 6, len(h)) + h)
        s.sendto(h[:16] + struct.pack("!H", c) + h[18:], (harness.VIP, 0))
    s.close()
    return {"sent": args.count}


def _args_forge(p):
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)


# ---- test side ----

def counters(env):
    st = env.dpstat_json()
    c = {}
    for lc in st.get("lcores", []):
        for k, v in lc.items():
            if isinstance(v, (int, float)) and k != "lcore":
                c[k] = c.get(k, 0) + int(v)
        for k, v in lc.get("drops", {}).items():
            c["drop:" + k] = c.get("drop:" + k, 0) + int(v)
    return c


def delta(a, b, k):
    return b.get(k, 0) - a.get(k, 0)


def ms(x):
    return f"{x * 1000:.1f} ms"


def scenario_http(env, totals):
    n = 40
    plain = env.in_client("timed", "--port", harness.HTTP_PORT, "--count", n)
    harness.check_no_errors(plain, "plain VIP")
    before = counters(env)
    res = env.in_client("timed", "--port", COOKIE_PORT, "--count", n)
    after = counters(env)
    harness.check_no_errors(res, "cookie VIP")
    harness.check_balanced(res["ports"], harness.HTTP_BACKENDS, "cookie VIP", 1)
    sent, ok = delta(before, after, "syncookies_sent"), delta(before, after, "syncookies_ok")
    bad = delta(before, after, "drop:syncookie_invalid")
    early = delta(before, after, "drop:tcp_no_flow")
    assert sent >= n and ok == n, f"{n} connections: syncookies_sent +{sent}, syncookies_ok +{ok}"
    assert bad == 0, f"syncookie_invalid +{bad} for {n} real clients"
    assert after.get("syncookies_active") == 1, f"syncookies_active {after.get('syncookies_active')}"
    return (f"{n} requests, cookies sent +{sent}, ok +{ok}, invalid +{bad}; client segments "
            f"dropped before the backend answered +{early}; median per request: plain "
            f"{ms(statistics.median(plain['secs']))}, cookies {ms(statistics.median(res['secs']))} "
            f"(max {ms(max(res['secs']))})")


def scenario_echo(env, totals):
    before = counters(env)
    res = env.in_client("echo", "--port", ECHO_PORT, "--bytes", ECHO_BYTES, timeout=120)
    after = counters(env)
    harness.check_no_errors(res, "echo")
    assert res["greeting"] == f"hello from echo :{ECHO_BACKEND}\n", f"greeting {res['greeting']!r}"
    assert res["sha"] == res["want_sha"], f"sha256 {res['sha']} != {res['want_sha']}"
    opts = res["options"]
    kinds = {"timestamps": bool(opts & 1), "sack": bool(opts & 2), "wscale": bool(opts & 4)}
    assert kinds == {"timestamps": False, "sack": True, "wscale": True}, \
        f"client negotiated {kinds} (want SACK and window scaling, no timestamps)"
    assert res["snd_wscale"] == 7, f"the client was told scale {res['snd_wscale']}, not 7"
    assert res["snd_mss"] == 1460, f"client MSS {res['snd_mss']}, not 1460"
    assert delta(before, after, "syncookies_ok") == 1, "the echo connection was not a cookie's"
    mib = 2 * ECHO_BYTES / (1 << 20)
    return (f"greeting after {ms(res['greeting_s'])}; {mib:.0f} MiB echoed byte for byte in "
            f"{res['seconds']:.2f}s; client: SACK on, no timestamps, send scale 7, MSS 1460")


def scenario_forge(env, totals):
    n = 200
    before = counters(env)
    env.in_client("forge", "--port", COOKIE_PORT, "--count", n)

    def counted():
        c = counters(env)
        return c if delta(before, c, "drop:syncookie_invalid") >= n else None

    after = harness.wait_until("the forged ACKs to be counted", 10, counted, interval=0.2)
    got = delta(before, after, "drop:syncookie_invalid")
    opened = delta(before, after, "syncookies_ok")
    assert got == n and opened == 0, f"{n} forged ACKs: syncookie_invalid +{got}, syncookies_ok +{opened}"
    return f"{n} forged ACKs dropped as syncookie_invalid, no flow opened"


def setup(env):
    env.topology_up()
    env.start_backends()
    env.client_popen("echoserver", "--port", ECHO_BACKEND, ns=env.ns_be)
    harness.wait_until("the echo server to listen", 15,
                       lambda: env.ns_has_listener("tcp", ECHO_BACKEND))
    env.start_dataplane()
    env.write_config(vips=harness.SEED_VIPS + [
        {"name": "web-cookies", "port": COOKIE_PORT, "backends": harness.HTTP_BACKENDS,
         "syncookies": "on"},
        {"name": "echo", "port": ECHO_PORT, "backends": [ECHO_BACKEND], "syncookies": "on"},
    ])
    env.start_controlplane()
    env.wait_vip()


SCENARIOS = [
    ("a", "HTTP through a cookie VIP", scenario_http),
    ("b", "server speaks first, 4 MiB each way byte for byte", scenario_echo),
    ("c", "forged cookie ACKs", scenario_forge),
]

if __name__ == "__main__":
    sys.exit(harness.run("syncookies", __file__, SCENARIOS, setup,
                         client_modes={"timed": (client_timed, _args_timed),
                                       "echoserver": (client_echoserver, _args_echoserver),
                                       "echo": (client_echo, _args_echo),
                                       "forge": (client_forge, _args_forge)}))
