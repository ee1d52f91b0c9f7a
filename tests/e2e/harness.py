# SPDX-License-Identifier: BSD-3-Clause
"""Shared harness of the end-to-end tests (python3 standard library only).

Topology (tools/lib/topo.sh, in network namespaces rd-TAG-{cl,lb,be}): a client
198.51.100.2, rondo's dataplane on veth dp0 in the lb namespace (net_af_packet,
full-NAT source 198.51.100.100), the lb host's own kernel address 198.51.100.1 on br0
(the control plane and its health checks run there), backends on 198.51.100.3.
With env.v6 set before topology_up() (topo.sh --v6) the client and the backends are dual
stack too: client 2001:db8:100::2, backends 2001:db8:100::3, rondo's v6 VIP 2001:db8::10
and local ip6 2001:db8:100::100 (the lb host's kernel has no IPv6). With env.router
(topo.sh --router) the client is 198.18.0.2 (2001:db8:300::2) behind a router, rd-TAG-rt.

A test file is a list of scenarios plus a setup function, handed to run():

    def setup(env):
        env.start_seed()            # or the pieces: topology_up(), start_backends(), ...
    SCENARIOS = [("a", "title", fn), ...]   # fn(env, totals) -> summary line
    if __name__ == "__main__":
        sys.exit(harness.run("name", __file__, SCENARIOS, setup, client_modes=...))

Client traffic runs inside a namespace: the test file re-runs itself there with
"--client MODE ..." (ip netns exec); a mode prints one JSON object. The modes below
(CLIENT_MODES) are shared; a test adds its own with client_modes={name: (fn, add_args)}.

Needs root (run() returns 77 = skipped otherwise). Env: RONDO_BUILD (build dir),
RONDO_SRC (source dir). Everything a run creates (namespaces and what runs in them, its
processes, its temp dir, DPDK's hugepage files and runtime dir, a hugepage reservation
and hugetlbfs mount) is removed or restored at the end: try/finally, atexit and
SIGTERM/SIGHUP handlers all lead to Env.stop(); namespaces, temp dirs and DPDK files
left by a run that was killed -9 are swept at the next start of any e2e test (not its
hugepage reservation: the count it replaced died with it).
"""

import argparse
import atexit
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

VIP = "203.0.113.10"
HTTP_PORT = 80
UDP_PORT = 53
LB_IP = "198.51.100.1"       # br0 in the lb namespace: the lb host's kernel address
CLIENT_IP = "198.51.100.2"
BACKEND_IP = "198.51.100.3"
LOCAL_IP = "198.51.100.100"  # rondo's full-NAT source address
# The fixed client port of the "sameport" mode: below the kernel's ephemeral range
# (32768-60999 by default), so that no earlier connection's TIME_WAIT holds it.
SAME_PORT = 31313
# IPv6 (topo.sh --v6; tests/common/seed_topology.h's kClient6, kBackend6, kLocal6, kVip6).
VIP6 = "2001:db8::10"
CLIENT_IP6 = "2001:db8:100::2"
BACKEND_IP6 = "2001:db8:100::3"
LOCAL_IP6 = "2001:db8:100::100"
HTTP_BACKENDS = [3000, 3001, 3002, 3003]
UDP_BACKENDS = [4000, 4001, 4002, 4003]

HTTP_BODY_RE = re.compile(rb"^hello from backend :(\d+)\n$")
UDP_REPLY_RE = re.compile(rb"^udp from backend :(\d+) (.*)$", re.S)


def is_v6(addr):
    return ":" in addr


def family(addr):
    return socket.AF_INET6 if is_v6(addr) else socket.AF_INET


def url_host(addr):
    """An address as a URL or Host header writes it: v6 in brackets."""
    return f"[{addr}]" if is_v6(addr) else addr


def endpoint(addr, port):
    """addr:port, [v6]:port: how rondoctl and the config's endpoints write a service."""
    return f"{url_host(addr)}:{port}"


# --------------------------------------------------------------------------------------
# Client side: runs inside a namespace, prints one JSON object.
# --------------------------------------------------------------------------------------

def http_exchange(sock, path, close):
    """Send one GET on a connected socket, read its response; return the backend port."""
    req = f"GET {path} HTTP/1.1\r\nHost: {url_host(VIP)}\r\n"
    if close:
        req += "Connection: close\r\n"
    sock.sendall((req + "\r\n").encode())
    return read_response(sock)


def read_head(sock):
    """Read an HTTP/1.1 200 response's head; return (its Content-Length, its headers
    {lower-case name: value} as bytes, the body bytes read with the head)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed before the response headers")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"unexpected status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" not in headers:
        raise ConnectionError("response without Content-Length")
    return int(headers[b"content-length"]), headers, body


def read_response(sock):
    """Read one HTTP/1.1 response (Content-Length framed); return the backend port."""
    length, _, body = read_head(sock)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed in the response body")
        body += chunk
    m = HTTP_BODY_RE.match(body[:length])
    if not m:
        raise ConnectionError(f"unexpected body {body[:length]!r}")
    return int(m.group(1))


# (wall-clock time, client source port) of every connection this client process opened:
# the harness looks for source ports the client kernel reused while rondo may still hold
# the previous flow with that 5-tuple (it explains an uneven rotation).
CONNECTS = []


# The VIP port the client modes connect to (--vip-port; the seed's web VIP by default).
TARGET_PORT = HTTP_PORT


def connect_vip(timeout):
    """A TCP connection to VIP:TARGET_PORT (either family: VIP may be a v6 address)."""
    s = socket.create_connection((VIP, TARGET_PORT), timeout=timeout)
    CONNECTS.append((time.time(), s.getsockname()[1]))
    return s


def one_request(path="/", timeout=3.0):
    """One HTTP request on a new TCP connection; return the backend port.

    The client closes first, as curl does against a keep-alive server: its TIME_WAIT
    keeps the kernel from handing the same source port to the next connections, so
    every connection here is a new 5-tuple for rondo. (Reusing a port at once is the
    "sameport" mode's business.)"""
    with connect_vip(timeout) as s:
        return http_exchange(s, path, close=False)


def err_text(e):
    return f"{type(e).__name__}: {e}"


def client_probe(args):
    deadline = time.monotonic() + args.deadline
    attempts = 0
    last = ""
    while True:
        attempts += 1
        try:
            port = one_request(timeout=1.0)
            return {"ok": True, "attempts": attempts, "port": port}
        except OSError as e:
            last = err_text(e)
        if time.monotonic() >= deadline:
            return {"ok": False, "attempts": attempts, "error": last}
        time.sleep(0.2)


def client_seq(args):
    ports, errors = [], []
    for i in range(args.count):
        try:
            ports.append(one_request())
        except OSError as e:
            errors.append(f"request {i}: {err_text(e)}")
    return {"ports": ports, "errors": errors}


def client_concurrent(args):
    n = args.count
    socks = [None] * n
    ports = [None] * n
    errors = []
    lock = threading.Lock()
    connected = threading.Semaphore(0)
    go = threading.Event()

    def worker(i):
        try:
            socks[i] = connect_vip(5.0)
        except OSError as e:
            with lock:
                errors.append(f"connect {i}: {err_text(e)}")
        connected.release()
        if socks[i] is None:
            return
        go.wait(30)
        try:
            ports[i] = http_exchange(socks[i], "/", close=False)
        except OSError as e:
            with lock:
                errors.append(f"request {i}: {err_text(e)}")
        finally:
            socks[i].close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        connected.acquire(timeout=30)
    # Every connection that succeeded is open now, before any request is sent.
    open_at_once = sum(1 for s in socks if s is not None)
    go.set()
    for t in threads:
        t.join(60)
    return {"ports": [p for p in ports if p is not None], "errors": errors,
            "open_at_once": open_at_once}


def client_longlived(args):
    errors = []
    ka_ports = []  # backend port of each request on the keep-alive connection
    short_ports = []
    ka = connect_vip(5.0)
    ka_local = ka.getsockname()
    slow_result = {}

    def ka_request(when):
        try:
            ka_ports.append(http_exchange(ka, "/", close=False))
        except OSError as e:
            errors.append(f"keep-alive request {when}: {err_text(e)}")

    ka_request("before")
    # A second long-lived connection: a request that the backend answers only after
    # slow_ms, i.e. a flow idle while the short connections come and go.
    slow = connect_vip(args.slow_ms / 1000 + 10)
    slow.sendall(f"GET /slow?ms={args.slow_ms} HTTP/1.1\r\nHost: {url_host(VIP)}\r\n\r\n".encode())

    def slow_reader():
        try:
            slow_result["port"] = read_response(slow)
        except OSError as e:
            slow_result["error"] = err_text(e)

    reader = threading.Thread(target=slow_reader)
    reader.start()
    for i in range(args.short):
        try:
            short_ports.append(one_request())
        except OSError as e:
            errors.append(f"short request {i}: {err_text(e)}")
        if (i + 1) % args.every == 0:
            ka_request(f"during (after {i + 1} short)")
    reader.join(args.slow_ms / 1000 + 15)
    ka_request("after")
    if ka.getsockname() != ka_local:
        errors.append("keep-alive socket changed its local address")
    ka.close()
    slow.close()
    if "error" in slow_result:
        errors.append(f"slow request: {slow_result['error']}")
    return {"ka_ports": ka_ports, "short_ports": short_ports, "errors": errors,
            "slow_port": slow_result.get("port")}


def new_udp_port_socket(used):
    """A UDP socket bound to a source port not in `used` (then added to it). The kernel picks
    ports at random: one of 20 repeats in about 0.7% of runs, and a repeated port is the
    earlier datagram's flow, not a new one."""
    held = []  # kept bound while we ask again, so the kernel picks another port
    while True:
        s = socket.socket(family(VIP), socket.SOCK_DGRAM)
        s.bind(("::" if is_v6(VIP) else "0.0.0.0", 0))
        if s.getsockname()[1] not in used:
            break
        held.append(s)
    for h in held:
        h.close()
    used.add(s.getsockname()[1])
    return s


def client_udp(args):
    results = []  # (backend port, client source port)
    errors = []
    retries = 0
    port = getattr(args, "udp_port", UDP_PORT)
    used = set()
    for i in range(args.count):
        # A new source port for each datagram: a new flow.
        s = new_udp_port_socket(used)
        s.settimeout(1.0)
        payload = f"seed {i} {os.getpid()}".encode()
        try:
            for attempt in range(3):
                s.sendto(payload, (VIP, port))
                try:
                    data, peer = s.recvfrom(2048)
                except socket.timeout:
                    retries += 1
                    continue
                m = UDP_REPLY_RE.match(data)
                # (v6 peers are (address, port, flow info, scope id))
                if peer[:2] != (VIP, port):
                    errors.append(f"datagram {i}: reply from {peer}, not the VIP")
                elif not m or m.group(2) != payload:
                    errors.append(f"datagram {i}: unexpected reply {data!r}")
                else:
                    results.append((int(m.group(1)), s.getsockname()[1]))
                break
            else:
                errors.append(f"datagram {i}: no reply after 3 tries")
        finally:
            s.close()
    return {"ports": [p for p, _ in results], "src_ports": [sp for _, sp in results],
            "errors": errors, "retries": retries}


def client_sameport(args):
    """Sequential connections from one fixed source port. The server closes first
    ("Connection: close"), so the client keeps no TIME_WAIT and may bind the port again
    at once: each connection is new, but has the same 5-tuple as the one before."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = map(int, f.read().split())
    if lo <= args.port <= hi:
        # An ephemeral port may be held by an earlier connection's TIME_WAIT (EADDRINUSE).
        return {"ports": [], "errors": [f"port {args.port} is in the ephemeral range {lo}-{hi}"]}
    ports, errors = [], []
    for i in range(args.count):
        s = None
        try:
            # The previous socket leaves LAST_ACK when our FIN is acknowledged; until then
            # the 4-tuple is taken (EADDRNOTAVAIL). Poll for that, briefly.
            deadline = time.monotonic() + 3.0
            while True:
                s = socket.socket(family(VIP), socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.settimeout(3.0)
                try:
                    s.bind(("::" if is_v6(VIP) else "0.0.0.0", args.port))
                    s.connect((VIP, HTTP_PORT))
                    break
                except OSError as e:
                    s.close()
                    if e.errno not in (errno.EADDRNOTAVAIL, errno.EADDRINUSE) or \
                            time.monotonic() >= deadline:
                        raise
                    time.sleep(0.02)
            ports.append(http_exchange(s, "/", close=True))
            # Let the server's FIN arrive, so the close below is not the first one.
            s.settimeout(2.0)
            while s.recv(4096):
                pass
        except OSError as e:
            errors.append(f"connection {i}: {err_text(e)}")
        finally:
            if s is not None:
                s.close()
    return {"ports": ports, "errors": errors}


def client_loop(args):
    ports, errors = [], []
    start = time.monotonic()
    while not os.path.exists(args.stop_file):
        if time.monotonic() - start > args.max_seconds:
            errors.append(f"stop file never appeared within {args.max_seconds}s")
            break
        t = time.monotonic() - start
        try:
            ports.append(one_request())
        except OSError as e:
            errors.append(f"at {t:.2f}s: {err_text(e)}")
        time.sleep(0.01)
    return {"ports": ports, "errors": errors, "seconds": time.monotonic() - start}


def _args_count(p):
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--vip-port", type=int, default=HTTP_PORT)
    p.add_argument("--vip", default=VIP)


def _args_probe(p):
    p.add_argument("--deadline", type=float, default=20)
    p.add_argument("--vip-port", type=int, default=HTTP_PORT)
    p.add_argument("--vip", default=VIP)


def _args_longlived(p):
    p.add_argument("--vip", default=VIP)
    p.add_argument("--short", type=int, default=100)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--slow-ms", type=int, default=1500)


def _args_udp(p):
    _args_count(p)
    p.add_argument("--udp-port", type=int, default=UDP_PORT)


def _args_sameport(p):
    p.add_argument("--vip", default=VIP)
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--port", type=int, default=SAME_PORT)


def _args_loop(p):
    p.add_argument("--stop-file", required=True)
    p.add_argument("--max-seconds", type=float, default=60)


# name -> (function(args) -> JSON-able dict, function(argparse parser) adding its options)
CLIENT_MODES = {
    "probe": (client_probe, _args_probe),
    "seq": (client_seq, _args_count),
    "concurrent": (client_concurrent, _args_count),
    "longlived": (client_longlived, _args_longlived),
    "udp": (client_udp, _args_udp),
    "sameport": (client_sameport, _args_sameport),
    "loop": (client_loop, _args_loop),
}


def client_main(prog, argv, extra_modes=None):
    modes = dict(CLIENT_MODES, **(extra_modes or {}))
    ap = argparse.ArgumentParser(prog=f"{prog} --client")
    sub = ap.add_subparsers(dest="mode", required=True)
    for name, (_, add_args) in modes.items():
        add_args(sub.add_parser(name))
    args = ap.parse_args(argv)
    global TARGET_PORT, VIP
    TARGET_PORT = getattr(args, "vip_port", HTTP_PORT)
    VIP = getattr(args, "vip", VIP)  # --vip: another VIP address (this client process only)
    result = modes[args.mode][0](args)
    result["connects"] = CONNECTS
    print(json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------------------
# Harness side: topology, processes, checks.
# --------------------------------------------------------------------------------------

LOG_NAME = "e2e"  # set by run()


def log(msg):
    # Never let a closed stdout (a reader that went away) stop the teardown.
    try:
        print(f"[{LOG_NAME}] {msg}", flush=True)
    except OSError:
        pass


def log_err(text):
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except OSError:
        pass


def wait_until(what, deadline_s, predicate, interval=0.1, alive=()):
    """Poll predicate() until it returns something true, and return that; fail after
    deadline_s or as soon as one of the (name, Popen) in `alive` has exited."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value:
            return value
        for name, proc in alive:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode} while waiting for {what}")
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {deadline_s}s waiting for {what}")
        time.sleep(interval)


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def sweep_stale(topo):
    """Remove what an e2e run killed -9 left behind (its pid is gone): its namespaces
    (with the processes in them) and its temp dir."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    tags = set()
    for line in out.splitlines():
        m = re.match(r"rd-(e2e(\d+))-(lb|cl|be|rt)\b", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            tags.add(m.group(1))
    for tag in sorted(tags):
        log(f"removing a stale topology {tag}")
        subprocess.run([topo, "down", tag], check=False)
    # Namespaces of their own that tests made (Env.extra_namespaces).
    for line in out.splitlines():
        m = re.match(r"(rd-e2e(\d+)-\S+)", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}") and \
                not re.match(r"rd-e2e\d+-(lb|cl|be|rt)$", m.group(1)):
            log(f"removing a stale namespace {m.group(1)}")
            delete_namespace(m.group(1))
    for tmp in (tempfile.gettempdir(), SHM_DIR):
        for name in os.listdir(tmp) if os.path.isdir(tmp) else ():
            m = re.match(r"rondo-e2e(\d+)\.", name)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
    for name in os.listdir(DPDK_RUN_DIR) if os.path.isdir(DPDK_RUN_DIR) else ():
        m = re.fullmatch(r"rondo-e2e(\d+)(-\w+)?", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            remove_dpdk_files(name)


def delete_namespace(ns):
    """End what runs in namespace ns (TERM, then KILL after 5 s), then delete it."""
    def pids():
        r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        return [int(p) for p in r.stdout.split()] if r.returncode == 0 else []
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        for p in pids():
            try:
                os.kill(p, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while pids() and time.monotonic() < deadline:
            time.sleep(0.05)
    subprocess.run(["ip", "netns", "del", ns], check=False, stderr=subprocess.DEVNULL)


def remove_dpdk_files(prefix):
    """Remove what DPDK processes with this --file-prefix leave behind: hugepage files
    (kept after exit so that a restart could reuse them) and the runtime dir (config,
    memory maps, sockets)."""
    if os.path.isdir(HUGEPAGE_MOUNT):
        for f in os.listdir(HUGEPAGE_MOUNT):
            if f.startswith(f"{prefix}map_"):
                try:
                    os.unlink(os.path.join(HUGEPAGE_MOUNT, f))
                except OSError:
                    pass
    shutil.rmtree(os.path.join(DPDK_RUN_DIR, prefix), ignore_errors=True)


def yaml_addr(addr):
    """An address (or prefix) as the config writes it: v6 quoted, so that no YAML reader
    takes its colons for syntax; v4 as it always was."""
    return f'"{addr}"' if is_v6(addr) else addr


def link_key(entry):
    """Where a route or neighbour is, as the config says it: "interface: NAME" if it names
    one, else "port: N" (default 0: the untagged interface of port 0)."""
    if entry.get("interface"):
        return f"interface: {entry['interface']}"
    return f"port: {entry.get('port', 0)}"


def yaml_config(vips, local_ips=(LOCAL_IP,), timeouts=None, comment="e2e topology",
                routes=(), neighbours=(), interfaces=()):
    """A control-plane config file (deploy/rondo.yaml's format). vips: dicts with name,
    port, protocol, backends (ports on BACKEND_IP, or (address, port) pairs) and optionally
    address (default VIP), health_check (a dict of the health_check keys), mode (fullnat |
    ipip | gue | l2dsr), scheduler, syncookies (off | on | auto), proxy_protocol (off | v2)
    and on_all_down (drop | open). timeouts: seconds, overriding the defaults below.
    routes: dicts with prefix and optionally via, and interface (a name) or port (default 0);
    neighbours: dicts with ip, mac and optionally interface or port (none: everything
    on-link, neighbours resolved by ARP/NDP). interfaces: dicts with name, port and
    optionally vlan, mtu, addresses (prefixes "192.0.2.1/24"); none: one untagged interface
    per port, as before interfaces existed.
    Any address may be IPv6 (a VIP's address, a backend's, a local ip, a route's prefix
    "2001:db8::/64" or via, a neighbour's ip): written as a plain address, quoted."""
    t = {"tcp_syn": 10, "tcp_established": 900, "tcp_closing": 10, "udp": 30}
    t.update(timeouts or {})
    out = [f"# {comment} (tools/lib/topo.sh): "
           f"{'routes below' if routes else 'interfaces below' if interfaces else 'everything on-link on dp0'}.",
           "timeouts:"]
    out += [f"  {k}: {v}" for k, v in t.items()]
    out.append(f"local_ips: [{', '.join(map(yaml_addr, local_ips))}]")
    if interfaces:
        out.append("interfaces:")
        for i in interfaces:
            out += [f"  - name: {i['name']}", f"    port: {i['port']}"]
            out += [f"    {key}: {i[key]}" for key in ("vlan", "mtu") if i.get(key)]
            if i.get("addresses"):
                out.append(f"    addresses: [{', '.join(map(yaml_addr, i['addresses']))}]")
    if routes:
        out.append("routes:")
        for r in routes:
            out.append(f"  - prefix: {yaml_addr(r['prefix'])}")
            if r.get("via"):
                out.append(f"    via: {yaml_addr(r['via'])}")
            out.append(f"    {link_key(r)}")
    if neighbours:
        out.append("neighbours:")
        out += [f"  - {{ip: {yaml_addr(n['ip'])}, mac: \"{n['mac']}\", {link_key(n)}}}"
                for n in neighbours]
    out.append("vips:")
    for v in vips:
        out += [f"  - name: {v['name']}", f"    address: {yaml_addr(v.get('address', VIP))}",
                f"    port: {v['port']}",
                f"    protocol: {v.get('protocol', 'tcp')}", f"    mode: {v.get('mode', 'fullnat')}",
                f"    scheduler: {v.get('scheduler', 'rr')}"]
        for key in ("syncookies", "proxy_protocol", "on_all_down"):
            if v.get(key):
                out.append(f"    {key}: {v[key]}")
        if v.get("health_check"):
            out.append("    health_check:")
            out += [f"      {k}: {val}" for k, val in v["health_check"].items()]
        out.append("    backends:")
        out += [f"      - {{address: {yaml_addr(a)}, port: {p}, weight: 1}}"
                for a, p in ((BACKEND_IP, b) if isinstance(b, int) else b for b in v["backends"])]
    return "\n".join(out) + "\n"


SEED_VIPS = [
    {"name": "web", "port": HTTP_PORT, "protocol": "tcp", "backends": HTTP_BACKENDS},
    {"name": "dns", "port": UDP_PORT, "protocol": "udp", "backends": UDP_BACKENDS},
]

# One worker lcore (main lcore 0 serves the control socket, worker on lcore 1).
ONE_WORKER_EAL = ["-l", "0,1", "--main-lcore", "0"]

HUGEPAGE_MOUNT = "/dev/hugepages"
NR_HUGEPAGES = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
SHM_DIR = "/dev/shm"
DPDK_RUN_DIR = "/var/run/dpdk"  # EAL's runtime dirs (root), one per --file-prefix


class Env:
    """One test run's topology and processes. Its tag (e2e<pid>) names the namespaces,
    the temp dir and DPDK's file prefix, so sweep_stale() can tell a dead run's leftovers."""

    def __init__(self, build, src, script):
        self.build = build
        self.src = src
        self.script = os.path.abspath(script)  # re-run with --client inside a namespace
        self.topo = os.path.join(src, "tools", "lib", "topo.sh")
        self.tag = f"e2e{os.getpid()}"
        self.ns_lb, self.ns_cl, self.ns_be = (f"rd-{self.tag}-{x}" for x in ("lb", "cl", "be"))
        self.tmp = tempfile.mkdtemp(prefix=f"rondo-{self.tag}.")
        self.sock = os.path.join(self.tmp, "dataplane.sock")
        self.api_sock = os.path.join(self.tmp, "controlplane.sock")
        self.state_file = os.path.join(self.tmp, "state.json")
        self.config = os.path.join(self.tmp, "rondo.yaml")
        self.dataplane = os.path.join(build, "dataplane", "rondo-dataplane")
        self.controlplane = os.path.join(build, "controlplane", "rondo-controlplane")
        self.dpstat = os.path.join(build, "controlplane", "rondo-dpstat")
        self.rondoctl_bin = os.path.join(build, "controlplane", "rondoctl")
        self.node = shutil.which("node") or shutil.which("nodejs") or "node"
        self.backend_js = os.path.join(src, "tools", "lib", "backend.js")
        self.procs = {}    # name -> Popen: long-running processes, stopped by stop()
        self.logs = {}     # name -> log path
        self.helpers = []  # client-side Popens (loops, sniffers): killed by stop()
        self.cp_args = []  # extra rondo-controlplane options
        self.tcp_closing_s = 10  # the config's timeouts.tcp_closing
        self.topo_up = False
        self.v6 = False  # topology_up() with topo.sh --v6 (dual-stack client and backends)
        self.router = False  # topology_up() with topo.sh --router (the client behind a router)
        # topology_up() with topo.sh --vlan OBJ: the client on a VLAN (192.0.2.2, and
        # 2001:db8:200::2 with v6), every frame tagged by OBJ (build/tests/e2e/vlan_tag_*.bpf.o).
        self.vlan_obj = None
        # Namespaces a test makes beyond topo.sh's three (named rd-TAG-*), and extra DPDK file
        # prefixes: stop() ends what runs in them and removes them.
        self.extra_namespaces = []
        self.extra_prefixes = []
        # Directories outside self.tmp that stop() removes: name them shm_dir(...) (tmpfs, and
        # swept like the temp dir after a run killed -9).
        self.extra_dirs = []
        self.hugepages_restore = None  # nr_hugepages to write back, if this run raised it
        self.hugetlbfs_mounted = False  # this run mounted HUGEPAGE_MOUNT
        self.stopped = False
        self.failed = False
        self.src_last = {}  # client source port -> when a connection last used it

    @property
    def reuse_window_s(self):
        return self.tcp_closing_s + 5

    @property
    def file_prefix(self):
        """DPDK's --file-prefix of this run's dataplane (dpdk-dumpcap needs it too)."""
        return f"rondo-{self.tag}"

    def reserve_hugepages(self, pages):
        """At least `pages` 2 MiB hugepages and hugetlbfs on HUGEPAGE_MOUNT; stop() puts
        back the count and the mount as they were."""
        os.makedirs(HUGEPAGE_MOUNT, exist_ok=True)
        if subprocess.run(["mountpoint", "-q", HUGEPAGE_MOUNT]).returncode != 0:
            subprocess.run(["mount", "-t", "hugetlbfs", "nodev", HUGEPAGE_MOUNT], check=True)
            self.hugetlbfs_mounted = True
        with open(NR_HUGEPAGES) as f:
            now = int(f.read())
        if now >= pages:
            return
        if self.hugepages_restore is None:
            self.hugepages_restore = now
        with open(NR_HUGEPAGES, "w") as f:
            f.write(str(pages))
        with open(NR_HUGEPAGES) as f:
            got = int(f.read())
        if got < pages:
            raise AssertionError(f"could reserve only {got} of {pages} hugepages of 2 MiB")
        log(f"hugepages: {now} -> {pages} (2 MiB; restored at the end)")

    def shm_dir(self, name):
        """A new directory on /dev/shm (tmpfs: e.g. the dataplane's --flow-dir, whose files
        are mapped shared), removed by stop()."""
        path = os.path.join(SHM_DIR, f"rondo-{self.tag}.{name}")
        os.makedirs(path, mode=0o700)
        self.extra_dirs.append(path)
        return path

    # ---- processes ----
    def spawn(self, name, ns, argv):
        path = self.logs.setdefault(name, os.path.join(self.tmp, f"{name}.log"))
        with open(path, "ab") as out:
            cmd = (["ip", "netns", "exec", ns] if ns else []) + argv
            # ip netns exec execs the program: the Popen pid is the program's pid.
            self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)
        return self.procs[name]

    def terminate(self, name, sig=signal.SIGTERM, wait_s=5.0):
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def client_cmd(self, ns, args):
        return ["ip", "netns", "exec", ns, sys.executable, self.script, "--client",
                *map(str, args)]

    def in_ns(self, ns, *args, timeout=120):
        """Run a client mode inside namespace ns; return its JSON answer."""
        r = subprocess.run(self.client_cmd(ns, args), capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"client {args[0]} exited {r.returncode}: {r.stderr.strip()}")
        return self.note_connects(json.loads(r.stdout))

    def in_client(self, *args, timeout=120):
        return self.in_ns(self.ns_cl, *args, timeout=timeout)

    def client_popen(self, *args, ns=None, stdin=None):
        """Start a client mode in the background (default: in the client namespace).
        stop() kills it if the test did not collect it."""
        p = subprocess.Popen(self.client_cmd(ns or self.ns_cl, args), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=stdin or subprocess.DEVNULL, text=True)
        self.helpers.append(p)
        return p

    def note_connects(self, res):
        """Count connections that reused a client source port within reuse_window_s of
        its previous use: rondo may still hold that 5-tuple's old flow (closing state)."""
        reused = []
        for t, port in res.pop("connects", []):
            last = self.src_last.get(port)
            if last is not None and t - last < self.reuse_window_s:
                reused.append((port, round(t - last, 2)))
            self.src_last[port] = t
        res["reused"] = reused
        return res

    def ns_has_listener(self, proto, port, ns=None):
        flag = "-Hltn" if proto == "tcp" else "-Hlun"
        r = subprocess.run(["ip", "netns", "exec", ns or self.ns_be, "ss", flag, f"sport = :{port}"],
                           capture_output=True, text=True)
        return r.returncode == 0 and r.stdout.strip() != ""

    def dpstat_json(self):
        r = subprocess.run([self.dpstat, "--dataplane-socket", self.sock, "--json"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise AssertionError(f"rondo-dpstat --json exited {r.returncode}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def scrape_metrics(self, listen):
        """The control plane's /metrics text (its --metrics-listen ADDR:PORT, in the lb
        namespace)."""
        r = subprocess.run(["ip", "netns", "exec", self.ns_lb, "curl", "-sS", "-f", "-m", "5",
                            f"http://{listen}/metrics"], capture_output=True, text=True, timeout=15)
        if r.returncode != 0:
            raise AssertionError(f"curl http://{listen}/metrics (lb namespace) exited "
                                 f"{r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def rondoctl(self, *args, timeout=60):
        """Run rondoctl against this run's control plane; returns the CompletedProcess.
        (The API socket is a file in the temp dir: reachable from any namespace.)"""
        return subprocess.run([self.rondoctl_bin, "--socket", self.api_sock, *map(str, args)],
                              capture_output=True, text=True, timeout=timeout)

    def rondoctl_ok(self, *args, timeout=60):
        r = self.rondoctl(*args, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"rondoctl {' '.join(map(str, args))} exited {r.returncode}: "
                                 f"{(r.stderr or r.stdout).strip()}")
        return r

    def rondoctl_json(self, *args, timeout=60):
        return json.loads(self.rondoctl_ok("--json", *args, timeout=timeout).stdout)

    def rondoctl_popen(self, *args):
        p = subprocess.Popen([self.rondoctl_bin, "--socket", self.api_sock, *map(str, args)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.helpers.append(p)
        return p

    # ---- setup pieces ----
    def topology_up(self):
        for binary in (self.dataplane, self.controlplane, self.dpstat, self.rondoctl_bin):
            if not os.access(binary, os.X_OK):
                raise AssertionError(f"{binary} is missing")
        opts = ((["--v6"] if self.v6 else []) + (["--router"] if self.router else []) +
                (["--vlan", self.vlan_obj] if self.vlan_obj else []))
        log(f"topology {self.tag} (tools/lib/topo.sh up {' '.join([self.tag, *opts])})")
        self.topo_up = True
        subprocess.run([self.topo, "up", self.tag, *opts], check=True)

    def start_backend(self, http_port, udp_port=None):
        """Start (or restart) the Node.js backend serving http_port (and udp_port) in
        the backends' namespace and wait until it listens. Its name is backend-<http_port>."""
        name = f"backend-{http_port}"
        argv = [self.node, self.backend_js, "--http-port", str(http_port)]
        if udp_port:
            argv += ["--udp-port", str(udp_port)]
        self.spawn(name, self.ns_be, argv)
        return name

    def wait_backend(self, http_port, udp_port=None):
        name = f"backend-{http_port}"
        wait_until(f"{name} to listen", 15,
                   lambda: self.ns_has_listener("tcp", http_port) and
                   (not udp_port or self.ns_has_listener("udp", udp_port)),
                   alive=[(name, self.procs[name])])

    def start_backends(self, http_ports=HTTP_BACKENDS, udp_ports=UDP_BACKENDS):
        pairs = list(zip(http_ports, udp_ports or [None] * len(http_ports)))
        log("backends: HTTP " + ",".join(f":{h}" for h, _ in pairs) +
            ("" if not udp_ports else "; UDP " + ",".join(f":{u}" for _, u in pairs)))
        for h, u in pairs:
            self.start_backend(h, u)
        for h, u in pairs:
            self.wait_backend(h, u)

    def start_dataplane(self, eal=ONE_WORKER_EAL, qpairs=1, idle_sleep_us=50, extra=(),
                        hugepages=0, vdev_args=""):
        """hugepages: 0 runs the dataplane on --no-huge memory (private to it); N reserves
        N hugepages and runs it on them, so that DPDK secondary processes (dpdk-dumpcap)
        can attach. vdev_args: more net_af_packet arguments (",framesz=...")."""
        if hugepages:
            self.reserve_hugepages(hugepages)
            memory = []  # EAL takes hugepages as it needs them
        else:
            memory = ["--no-huge", "-m", "512"]
        log(f"dataplane ({' '.join(eal + memory)}, {qpairs} queue pair(s) on dp0)")
        dp = self.spawn("dataplane", self.ns_lb, [
            self.dataplane, *eal, *memory, "--no-pci", "--file-prefix", self.file_prefix,
            f"--vdev=net_af_packet0,iface=dp0,qpairs={qpairs}{vdev_args}", "--log-level=*:notice",
            "--", "--ctl-socket", self.sock, "--state-dir", os.path.join(self.tmp, "state"),
            "--idle-sleep-us", str(idle_sleep_us), *extra])
        wait_until("the dataplane to print 'ready'", 30,
                   lambda: "ready" in tail(self.logs["dataplane"], 1000), interval=0.2,
                   alive=[("rondo-dataplane", dp)])
        return dp

    def write_config(self, vips=SEED_VIPS, timeouts=None, **more):
        """Write and --check the config; more: yaml_config's local_ips, routes, neighbours."""
        if timeouts and "tcp_closing" in timeouts:
            self.tcp_closing_s = timeouts["tcp_closing"]
        with open(self.config, "w") as f:
            f.write(yaml_config(vips, timeouts=timeouts, **more))
        r = subprocess.run([self.controlplane, "--config", self.config, "--check"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError(f"rondo-controlplane --check rejected the config:\n"
                                 f"{r.stdout}{r.stderr}")

    def start_controlplane(self):
        # In the lb namespace: its health checks leave from br0 (198.51.100.1) and its
        # metrics listener is that namespace's. State file and API socket in the temp dir:
        # never the host's /var/lib/rondo or /run/rondo. A restart reads the state file
        # the previous instance wrote.
        return self.spawn("controlplane", self.ns_lb,
                          [self.controlplane, "--config", self.config,
                           "--dataplane-socket", self.sock,
                           "--state-file", self.state_file,
                           "--api-socket", self.api_sock, *self.cp_args])

    def wait_vip(self, vip=None, port=HTTP_PORT):
        """Wait (20 s) for vip:port (default: the seed's VIP) to answer HTTP."""
        vip = vip or VIP
        log(f"waiting for {endpoint(vip, port)} to answer")
        probe = self.in_client("probe", "--deadline", 20, "--vip", vip, "--vip-port", port)
        if not probe["ok"]:
            raise AssertionError(f"no HTTP answer through the VIP {endpoint(vip, port)} within "
                                 f"20s ({probe['attempts']} tries, last: {probe['error']})")
        for name in ("dataplane", "controlplane"):
            if self.procs[name].poll() is not None:
                raise AssertionError(f"{name} exited with {self.procs[name].returncode}")
        log(f"VIP answers (after {probe['attempts']} tries)")
        return probe

    def start_seed(self, eal=ONE_WORKER_EAL, qpairs=1, hugepages=0):
        """The seed set-up: four backends (HTTP :3000-3003, UDP :4000-4003), the
        dataplane, the control plane with vips web (tcp/80) and dns (udp/53)."""
        self.topology_up()
        self.start_backends()
        self.start_dataplane(eal=eal, qpairs=qpairs, hugepages=hugepages)
        self.write_config()
        log("control plane")
        self.start_controlplane()
        self.wait_vip()

    # ---- teardown ----
    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        # A second Ctrl-C/SIGTERM must not cut the teardown short.
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
        if self.failed:
            for name, path in self.logs.items():
                text = tail(path)
                # A backend's log is worth showing only if it says more than "listening".
                if name.startswith("backend-") and all(
                        line.startswith("listening") for line in text.splitlines()):
                    continue
                if text:
                    log_err(f"----- last lines of {name}.log -----\n{text}")
        for p in self.helpers:
            try:
                if p.poll() is None:
                    p.kill()
                # What a helper said on stderr, if the test did not collect it already.
                _, err = p.communicate(timeout=5)
                if self.failed and err and err.strip():
                    log_err(f"----- stderr of {' '.join(p.args[4:7])} -----\n{err[-3000:]}\n")
            except Exception:  # collected already, or stuck: keep tearing down
                pass
        # Control plane first, then the dataplane, then the backends.
        for name in sorted(self.procs, key=lambda n: (n != "controlplane", n != "dataplane")):
            try:
                self.terminate(name)
            except Exception as e:
                log_err(f"stopping {name}: {e}\n")
        if self.topo_up:
            # Also ends anything still running in the namespaces (a client helper).
            subprocess.run([self.topo, "down", self.tag], check=False)
        for ns in self.extra_namespaces:
            delete_namespace(ns)
        remove_dpdk_files(self.file_prefix)
        for prefix in self.extra_prefixes:
            remove_dpdk_files(prefix)
        if self.hugepages_restore is not None:
            try:
                with open(NR_HUGEPAGES, "w") as f:
                    f.write(str(self.hugepages_restore))
            except OSError as e:
                log_err(f"restoring nr_hugepages to {self.hugepages_restore}: {e}\n")
        if self.hugetlbfs_mounted:
            subprocess.run(["umount", HUGEPAGE_MOUNT], check=False)
        for d in self.extra_dirs:
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------
# Checks shared by the scenarios.
# --------------------------------------------------------------------------------------

def parse_metrics(text):
    """{(name, frozenset of label pairs): value} of a text exposition (no escapes in
    our label values)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        pairs = []
        for item in filter(None, labels.rstrip("}").split(",")):
            k, _, v = item.partition("=")
            pairs.append((k, v.strip('"')))
        out[(name, frozenset(pairs))] = float(value)
    return out


def fmt_counts(ports):
    c = Counter(ports)
    return " ".join(f":{p}={c[p]}" for p in sorted(c))


def check_balanced(ports, backends, what, max_spread, note=""):
    """Every backend got some of `ports`, and no two backends' counts differ by more than
    max_spread (0: exact round robin). Returns the spread."""
    c = Counter(ports)
    assert set(c) == set(backends), f"{what}: backends seen: {fmt_counts(ports)}{note}"
    spread = max(c.values()) - min(c.values())
    assert spread <= max_spread, (f"{what} not balanced: {fmt_counts(ports)} (counts differ "
                                  f"by {spread}; round robin allows {max_spread}){note}")
    return spread


def reuse_note(env, res, totals):
    """Say so if the client kernel reused source ports while rondo may still have held
    the old flows: such a SYN meets an existing (closing) flow, which explains an uneven
    rotation or a connection count below what the clients made."""
    reused = res.get("reused", [])
    totals["reused"] += len(reused)
    if not reused:
        return ""
    sample = ", ".join(f":{p} after {gap}s" for p, gap in reused[:5])
    return (f" [client reused {len(reused)} source port(s) within {env.reuse_window_s}s of "
            f"their last use: {sample}]")


def check_no_errors(res, what):
    errs = res["errors"]
    assert not errs, f"{what}: {len(errs)} failed, first: " + "; ".join(errs[:5])


# --------------------------------------------------------------------------------------
# Entry point.
# --------------------------------------------------------------------------------------

def run(name, script, scenarios, setup, client_modes=None):
    """The whole of a test file's main: "--client MODE ..." runs a client mode; otherwise
    (as root) set up with setup(env), run the scenarios in order (each fn(env, totals)
    returns a summary line; an exception fails it, and the others still run), tear down,
    print the summary. Returns the exit code: 0 passed, 1 failed, 77 skipped."""
    global LOG_NAME
    LOG_NAME = name
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        return client_main(os.path.basename(script), sys.argv[2:], client_modes)
    if os.geteuid() != 0:
        print(f"{name}: skipped, needs root (network namespaces)")
        return 77
    src = os.environ.get("RONDO_SRC") or os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))
    build = os.environ.get("RONDO_BUILD") or os.path.join(src, "build")
    env = Env(build, src, script)
    sweep_stale(env.topo)
    atexit.register(env.stop)
    # SIGTERM (meson's timeout, Ctrl-C from a wrapper): unwind through finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))

    results = []
    t_start = time.monotonic()
    try:
        try:
            setup(env)
        except Exception as e:
            env.failed = True
            log(f"SETUP FAILED: {e if isinstance(e, AssertionError) else err_text(e)}")
            return 1
        totals = Counter()
        for key, title, fn in scenarios:
            log(f"--- {key}. {title}")
            t0 = time.monotonic()
            try:
                summary = fn(env, totals)
                results.append((key, title, True, summary))
                log(f"PASS {key}. {title}: {summary} ({time.monotonic() - t0:.1f}s)")
            except Exception as e:
                env.failed = True
                msg = str(e) if isinstance(e, AssertionError) else err_text(e)
                results.append((key, title, False, msg))
                log(f"FAIL {key}. {title}: {msg}")
    except BaseException:
        env.failed = True  # a signal or an unexpected error: show the logs
        raise
    finally:
        env.stop()

    log("=== summary")
    for key, title, ok, text in results:
        log(f"{'PASS' if ok else 'FAIL'} {key}. {title}: {text}")
    failed = sum(1 for r in results if not r[2])
    log(f"scenarios: {len(results) - failed} of {len(results)} passed "
        f"({time.monotonic() - t_start:.0f}s)")
    return 1 if failed else 0
