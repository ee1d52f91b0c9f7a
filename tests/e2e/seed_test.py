#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""End-to-end "seed scenario": rondo in front of four Node.js backends.

Topology (tools/lib/topo.sh, in network namespaces rd-TAG-{cl,lb,be}): a client
198.51.100.2, rondo's dataplane on veth dp0 (net_af_packet, full-NAT source
198.51.100.100), backends on 198.51.100.3. VIP 203.0.113.10: tcp/80 -> :3000-3003,
udp/53 -> :4000-4003, round robin per connection.

Scenarios, in order (rondo runs one worker lcore, so round robin is exact):
  a. 400 sequential HTTP connections: exactly 100 per backend
  b. 50 concurrent connections (all open at once): all answered, balanced
  c. a keep-alive connection stays on its backend while 100 others come and go
  d. 20 UDP datagrams from 20 source ports: all answered, 5 per backend
  e. kill -9 the control plane during a request loop, restart it: no request fails
  f. rondo-dpstat --json counted the connections per backend
  g. connections one after the other from the same client port (the kernel reuses a
     port at once when the server closed first) are each a new connection

Client traffic runs inside rd-TAG-cl: this file re-runs itself there with
"--client MODE" (ip netns exec), which prints one JSON object.

Needs root (exit 77 = skipped otherwise). Env: RONDO_BUILD (build dir), RONDO_SRC
(source dir). Everything it creates is removed at the end: try/finally, atexit and a
SIGTERM handler all lead to Env.stop(); namespaces left by a run that was killed -9
are swept at the next start.
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
BACKEND_IP = "198.51.100.3"
LOCAL_IP = "198.51.100.100"
HTTP_BACKENDS = [3000, 3001, 3002, 3003]
UDP_BACKENDS = [4000, 4001, 4002, 4003]
TOPO = ""  # tools/lib/topo.sh, set by main() from RONDO_SRC
TCP_CLOSING_S = 10  # timeouts.tcp_closing in the config below
REUSE_WINDOW_S = TCP_CLOSING_S + 5

HTTP_BODY_RE = re.compile(rb"^hello from backend :(\d+)\n$")
UDP_REPLY_RE = re.compile(rb"^udp from backend :(\d+) (.*)$", re.S)


# --------------------------------------------------------------------------------------
# Client side: runs inside the client namespace, prints one JSON object.
# --------------------------------------------------------------------------------------

def http_exchange(sock, path, close):
    """Send one GET on a connected socket, read its response; return the backend port."""
    req = f"GET {path} HTTP/1.1\r\nHost: {VIP}\r\n"
    if close:
        req += "Connection: close\r\n"
    sock.sendall((req + "\r\n").encode())
    return read_response(sock)


def read_response(sock):
    """Read one HTTP/1.1 response (Content-Length framed); return the backend port."""
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
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ConnectionError("response without Content-Length")
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


def connect_vip(timeout):
    s = socket.create_connection((VIP, HTTP_PORT), timeout=timeout)
    CONNECTS.append((time.time(), s.getsockname()[1]))
    return s


def one_request(path="/", timeout=3.0):
    """One HTTP request on a new TCP connection; return the backend port.

    The client closes first, as curl does against a keep-alive server: its TIME_WAIT
    keeps the kernel from handing the same source port to the next connections, so
    every connection here is a new 5-tuple for rondo. (Reusing a port at once is
    scenario g's business.)"""
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
    slow.sendall(f"GET /slow?ms={args.slow_ms} HTTP/1.1\r\nHost: {VIP}\r\n\r\n".encode())

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


def client_udp(args):
    results = []  # (backend port, client source port)
    errors = []
    retries = 0
    for i in range(args.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        s.bind(("0.0.0.0", 0))  # a new source port for each datagram: a new flow
        payload = f"seed {i} {os.getpid()}".encode()
        try:
            for attempt in range(3):
                s.sendto(payload, (VIP, UDP_PORT))
                try:
                    data, peer = s.recvfrom(2048)
                except socket.timeout:
                    retries += 1
                    continue
                m = UDP_REPLY_RE.match(data)
                if peer != (VIP, UDP_PORT):
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
    ports, errors = [], []
    for i in range(args.count):
        s = None
        try:
            # The previous socket leaves LAST_ACK when our FIN is acknowledged; until then
            # the 4-tuple is taken (EADDRNOTAVAIL). Poll for that, briefly.
            deadline = time.monotonic() + 3.0
            while True:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.settimeout(3.0)
                try:
                    s.bind(("0.0.0.0", args.port))
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


def client_main(argv):
    ap = argparse.ArgumentParser(prog="seed_test.py --client")
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--deadline", type=float, default=20)
    p = sub.add_parser("seq")
    p.add_argument("--count", type=int, required=True)
    p = sub.add_parser("concurrent")
    p.add_argument("--count", type=int, required=True)
    p = sub.add_parser("longlived")
    p.add_argument("--short", type=int, default=100)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--slow-ms", type=int, default=1500)
    p = sub.add_parser("udp")
    p.add_argument("--count", type=int, required=True)
    p = sub.add_parser("sameport")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--port", type=int, default=40404)
    p = sub.add_parser("loop")
    p.add_argument("--stop-file", required=True)
    p.add_argument("--max-seconds", type=float, default=60)
    args = ap.parse_args(argv)
    fn = {"probe": client_probe, "seq": client_seq, "concurrent": client_concurrent,
          "longlived": client_longlived, "udp": client_udp, "sameport": client_sameport,
          "loop": client_loop}[args.mode]
    result = fn(args)
    result["connects"] = CONNECTS
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------
# Harness side: topology, processes, scenarios.
# --------------------------------------------------------------------------------------

def log(msg):
    # Never let a closed stdout (a reader that went away) stop the teardown.
    try:
        print(f"[seed] {msg}", flush=True)
    except OSError:
        pass


def log_err(text):
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except OSError:
        pass


def wait_until(what, deadline_s, predicate, interval=0.1, alive=()):
    """Poll predicate() until it is true; fail after deadline_s or if a process died."""
    end = time.monotonic() + deadline_s
    while True:
        if predicate():
            return
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


def sweep_stale():
    """Remove what an e2e run killed -9 left behind (its pid is gone): its namespaces
    (with the processes in them) and its temp dir."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    tags = set()
    for line in out.splitlines():
        m = re.match(r"rd-(e2e(\d+))-(lb|cl|be)\b", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            tags.add(m.group(1))
    for tag in sorted(tags):
        log(f"removing a stale topology {tag}")
        subprocess.run([TOPO, "down", tag], check=False)
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        m = re.match(r"rondo-e2e(\d+)\.", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)


class Env:
    def __init__(self, build, src):
        self.build = build
        self.src = src
        self.tag = f"e2e{os.getpid()}"
        self.ns_lb, self.ns_cl, self.ns_be = (f"rd-{self.tag}-{x}" for x in ("lb", "cl", "be"))
        self.tmp = tempfile.mkdtemp(prefix=f"rondo-{self.tag}.")
        self.sock = os.path.join(self.tmp, "dataplane.sock")
        self.config = os.path.join(self.tmp, "rondo.yaml")
        self.dataplane = os.path.join(build, "dataplane", "rondo-dataplane")
        self.controlplane = os.path.join(build, "controlplane", "rondo-controlplane")
        self.dpstat = os.path.join(build, "controlplane", "rondo-dpstat")
        self.procs = {}  # name -> Popen
        self.logs = {}   # name -> path
        self.topo_up = False
        self.stopped = False
        self.failed = False
        self.src_last = {}  # client source port -> when a connection last used it

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

    def in_client(self, *args, timeout=120):
        cmd = ["ip", "netns", "exec", self.ns_cl, sys.executable, os.path.abspath(__file__),
               "--client", *map(str, args)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"client {args[0]} exited {r.returncode}: {r.stderr.strip()}")
        return self.note_connects(json.loads(r.stdout))

    def note_connects(self, res):
        """Count connections that reused a client source port within REUSE_WINDOW_S of
        its previous use: rondo may still hold that 5-tuple's old flow (closing state)."""
        reused = []
        for t, port in res.pop("connects", []):
            last = self.src_last.get(port)
            if last is not None and t - last < REUSE_WINDOW_S:
                reused.append((port, round(t - last, 2)))
            self.src_last[port] = t
        res["reused"] = reused
        return res

    def client_popen(self, *args):
        cmd = ["ip", "netns", "exec", self.ns_cl, sys.executable, os.path.abspath(__file__),
               "--client", *map(str, args)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ns_has_listener(self, proto, port):
        flag = "-Hltn" if proto == "tcp" else "-Hlun"
        r = subprocess.run(["ip", "netns", "exec", self.ns_be, "ss", flag, f"sport = :{port}"],
                           capture_output=True, text=True)
        return r.returncode == 0 and r.stdout.strip() != ""

    def dpstat_json(self):
        r = subprocess.run([self.dpstat, "--dataplane-socket", self.sock, "--json"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise AssertionError(f"rondo-dpstat --json exited {r.returncode}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    # ---- setup ----
    def write_config(self):
        def pool(ports):
            return "".join(f"      - {{address: {BACKEND_IP}, port: {p}, weight: 1}}\n"
                           for p in ports)
        with open(self.config, "w") as f:
            f.write(
                "# e2e seed topology (tools/lib/topo.sh): everything on-link on dp0.\n"
                "timeouts:\n"
                "  tcp_syn: 10\n"
                "  tcp_established: 900\n"
                f"  tcp_closing: {TCP_CLOSING_S}\n"
                "  udp: 30\n"
                f"local_ips: [{LOCAL_IP}]\n"
                "vips:\n"
                f"  - name: web\n    address: {VIP}\n    port: {HTTP_PORT}\n"
                "    protocol: tcp\n    mode: fullnat\n    scheduler: rr\n    backends:\n"
                + pool(HTTP_BACKENDS) +
                f"  - name: dns\n    address: {VIP}\n    port: {UDP_PORT}\n"
                "    protocol: udp\n    mode: fullnat\n    scheduler: rr\n    backends:\n"
                + pool(UDP_BACKENDS))

    def start_controlplane(self):
        # In the lb namespace: whatever it sends (health checks) stays in the sandbox.
        # State file and API socket in the temp dir: never the host's /var/lib/rondo or
        # /run/rondo. A restart reads the state file the previous instance wrote.
        return self.spawn("controlplane", self.ns_lb,
                          [self.controlplane, "--config", self.config,
                           "--dataplane-socket", self.sock,
                           "--state-file", os.path.join(self.tmp, "state.json"),
                           "--api-socket", os.path.join(self.tmp, "controlplane.sock")])

    def start(self):
        for binary in (self.dataplane, self.controlplane, self.dpstat):
            if not os.access(binary, os.X_OK):
                raise AssertionError(f"{binary} is missing")
        log(f"topology {self.tag} (tools/lib/topo.sh up {self.tag})")
        self.topo_up = True
        subprocess.run([TOPO, "up", self.tag], check=True)

        log("backends: HTTP :3000-3003, UDP :4000-4003")
        node = shutil.which("node") or shutil.which("nodejs") or "node"
        backend_js = os.path.join(self.src, "tools", "lib", "backend.js")
        for h, u in zip(HTTP_BACKENDS, UDP_BACKENDS):
            self.spawn(f"backend-{h}", self.ns_be,
                       [node, backend_js, "--http-port", str(h), "--udp-port", str(u)])
        for h, u in zip(HTTP_BACKENDS, UDP_BACKENDS):
            name = f"backend-{h}"
            wait_until(f"{name} to listen", 15,
                       lambda h=h, u=u: self.ns_has_listener("tcp", h) and self.ns_has_listener("udp", u),
                       alive=[(name, self.procs[name])])

        log("dataplane")
        dp = self.spawn("dataplane", self.ns_lb, [
            self.dataplane, "-l", "0,1", "--main-lcore", "0", "--no-huge", "-m", "512",
            "--no-pci", "--file-prefix", f"rondo-{self.tag}",
            "--vdev=net_af_packet0,iface=dp0,qpairs=1", "--log-level=*:notice",
            "--", "--ctl-socket", self.sock, "--idle-sleep-us", "50"])
        wait_until("the dataplane to print 'ready'", 30,
                   lambda: "ready" in tail(self.logs["dataplane"], 1000), interval=0.2,
                   alive=[("rondo-dataplane", dp)])

        self.write_config()
        r = subprocess.run([self.controlplane, "--config", self.config, "--check"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError(f"rondo-controlplane --check rejected the config:\n"
                                 f"{r.stdout}{r.stderr}")
        log("control plane")
        self.start_controlplane()
        log("waiting for the VIP to answer")
        probe = self.in_client("probe", "--deadline", 20)
        if not probe["ok"]:
            raise AssertionError(f"no HTTP answer through the VIP within 20s "
                                 f"({probe['attempts']} tries, last: {probe['error']})")
        for name in ("dataplane", "controlplane"):
            if self.procs[name].poll() is not None:
                raise AssertionError(f"{name} exited with {self.procs[name].returncode}")
        log(f"VIP answers (after {probe['attempts']} tries)")

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
        # Control plane first, then the dataplane, then the backends.
        for name in sorted(self.procs, key=lambda n: (n != "controlplane", n != "dataplane")):
            try:
                self.terminate(name)
            except Exception as e:  # keep tearing down whatever happens
                log_err(f"stopping {name}: {e}\n")
        if self.topo_up:
            # Also ends anything still running in the namespaces (a client helper).
            subprocess.run([TOPO, "down", self.tag], check=False)
        if os.path.isdir("/dev/hugepages"):
            for f in os.listdir("/dev/hugepages"):
                if f.startswith(f"rondo-{self.tag}map_"):
                    try:
                        os.unlink(os.path.join("/dev/hugepages", f))
                    except OSError:
                        pass
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------
# Scenarios. Each returns its summary line; an AssertionError fails it.
# --------------------------------------------------------------------------------------

def fmt_counts(ports):
    c = Counter(ports)
    return " ".join(f":{p}={c[p]}" for p in sorted(c))


def reuse_note(res, totals):
    """Say so if the client kernel reused source ports while rondo may still have held
    the old flows: such a SYN meets an existing (closing) flow, which explains an uneven
    rotation or a connection count below what the clients made."""
    reused = res.get("reused", [])
    totals["reused"] += len(reused)
    if not reused:
        return ""
    sample = ", ".join(f":{p} after {gap}s" for p, gap in reused[:5])
    return (f" [client reused {len(reused)} source port(s) within {REUSE_WINDOW_S}s of "
            f"their last use: {sample}]")


def check_no_errors(res, what):
    errs = res["errors"]
    assert not errs, f"{what}: {len(errs)} failed, first: " + "; ".join(errs[:5])


def scenario_a_sequential(env, totals):
    res = env.in_client("seq", "--count", 400)
    check_no_errors(res, "sequential connections")
    note = reuse_note(res, totals)
    c = Counter(res["ports"])
    totals["tcp"] += len(res["ports"])
    assert len(res["ports"]) == 400, f"{len(res['ports'])} answers for 400 connections"
    assert set(c) == set(HTTP_BACKENDS), f"backends seen: {fmt_counts(res['ports'])}"
    assert all(c[p] == 100 for p in HTTP_BACKENDS), \
        f"round robin is not exact: {fmt_counts(res['ports'])} (want 100 each){note}"
    # Per-connection round robin: consecutive connections go to consecutive backends.
    order = res["ports"]
    bad = [i for i in range(1, len(order))
           if HTTP_BACKENDS.index(order[i]) != (HTTP_BACKENDS.index(order[i - 1]) + 1) % 4]
    assert not bad, (f"rotation broken at connection {bad[0]}: "
                     f"{order[max(0, bad[0] - 4):bad[0] + 4]}{note}")
    return f"400/400 sequential connections answered, {fmt_counts(order)}, strict rotation{note}"


def scenario_b_concurrent(env, totals):
    res = env.in_client("concurrent", "--count", 50)
    check_no_errors(res, "concurrent connections")
    note = reuse_note(res, totals)
    totals["tcp"] += len(res["ports"])
    assert res["open_at_once"] == 50, f"only {res['open_at_once']} of 50 connections opened"
    assert len(res["ports"]) == 50, f"{len(res['ports'])} answers for 50 connections"
    c = Counter(res["ports"])
    assert set(c) == set(HTTP_BACKENDS) and max(c.values()) - min(c.values()) <= 1, \
        f"50 concurrent connections not balanced: {fmt_counts(res['ports'])}{note}"
    return (f"50/50 concurrent connections (all open at once) answered, "
            f"{fmt_counts(res['ports'])}{note}")


def scenario_c_longlived(env, totals):
    res = env.in_client("longlived", "--short", 100, "--every", 10, "--slow-ms", 2500)
    check_no_errors(res, "long-lived scenario")
    note = reuse_note(res, totals)
    totals["tcp"] += len(res["short_ports"]) + 2
    ka = res["ka_ports"]
    assert len(ka) == 12, f"{len(ka)} answers on the keep-alive connection, want 12"
    assert len(set(ka)) == 1, f"keep-alive connection moved between backends: {ka}"
    c = Counter(res["short_ports"])
    assert len(res["short_ports"]) == 100 and all(c[p] == 25 for p in HTTP_BACKENDS), \
        f"short connections not round robin: {fmt_counts(res['short_ports'])}{note}"
    assert res["slow_port"] in HTTP_BACKENDS, f"/slow request answered by {res['slow_port']}"
    return (f"keep-alive connection: 12/12 requests (before, 10 during, after) all on :{ka[0]}; "
            f"/slow connection held 2.5s on :{res['slow_port']}; "
            f"100 short connections {fmt_counts(res['short_ports'])}{note}")


def scenario_d_udp(env, totals):
    res = env.in_client("udp", "--count", 20)
    check_no_errors(res, "UDP datagrams")
    totals["udp"] += len(res["ports"])
    c = Counter(res["ports"])
    assert len(res["ports"]) == 20, f"{len(res['ports'])} UDP answers for 20 datagrams"
    assert len(set(res["src_ports"])) == 20, "datagrams did not use 20 source ports"
    assert set(c) == set(UDP_BACKENDS) and all(c[p] == 5 for p in UDP_BACKENDS), \
        f"UDP flows not round robin: {fmt_counts(res['ports'])} (want 5 each)"
    return (f"20/20 UDP datagrams from 20 source ports answered ({res['retries']} retries), "
            f"{fmt_counts(res['ports'])}")


def dataplane_generation(env):
    try:
        return env.dpstat_json().get("generation")
    except Exception:
        return None


def scenario_e_controlplane_restart(env, totals):
    dp = env.procs["dataplane"]
    stop_file = os.path.join(env.tmp, "loop.stop")
    gen_before = dataplane_generation(env)
    loop = env.client_popen("loop", "--stop-file", stop_file, "--max-seconds", 60)
    try:
        time.sleep(1.0)  # the loop runs with the control plane up
        cp = env.procs["controlplane"]
        assert cp.poll() is None, "control plane died before the kill"
        cp.kill()  # SIGKILL: no goodbye to the dataplane
        cp.wait(10)
        del env.procs["controlplane"]
        time.sleep(3.0)  # ~3 s of traffic with no control plane at all
        assert dp.poll() is None, "dataplane exited while the control plane was down"
        log_size = os.path.getsize(env.logs["controlplane"])
        env.start_controlplane()
        # The new instance finds the dataplane (and re-pushes only if its state differs):
        # wait for it to say so, but only report it, as the log wording is not an API.
        end = time.monotonic() + 10
        reconnected = False
        while not reconnected and time.monotonic() < end:
            with open(env.logs["controlplane"], errors="replace") as f:
                f.seek(log_size)
                reconnected = "connected to dataplane" in f.read()
            if not reconnected:
                time.sleep(0.1)
        gen_after = dataplane_generation(env)
        time.sleep(2.0)  # and traffic goes on after the restart
        assert env.procs["controlplane"].poll() is None, "restarted control plane exited"
    finally:
        open(stop_file, "w").close()
        out, err = loop.communicate(timeout=60)
    assert loop.returncode == 0, f"request loop exited {loop.returncode}: {err.strip()}"
    res = env.note_connects(json.loads(out))
    note = reuse_note(res, totals)
    totals["tcp"] += len(res["ports"])
    check_no_errors(res, "requests across the control-plane kill/restart")
    assert len(res["ports"]) >= 20, f"only {len(res['ports'])} requests in {res['seconds']:.1f}s"
    assert dp.poll() is None, "dataplane exited"
    gen_note = (f"generation {gen_before} -> {gen_after}" if gen_after != gen_before
                else f"generation unchanged ({gen_before})")
    gen_note += ("; the new control plane reconnected" if reconnected
                 else "; no 'connected to dataplane' in the new control plane's log")
    return (f"{len(res['ports'])}/{len(res['ports'])} requests ok over {res['seconds']:.1f}s with the "
            f"control plane killed (-9) for 3s and restarted; {gen_note}; "
            f"{fmt_counts(res['ports'])}{note}")


def scenario_f_dpstat(env, totals):
    # Backend ids are positions over all vips in config order (deploy/rondo.yaml):
    # web's backends are ids 0-3 (:3000-3003), dns's are ids 4-7 (:4000-4003).
    stats = env.dpstat_json()
    by_id = {int(b["id"]): b for b in stats.get("backends", [])}
    conns = {i: int(by_id[i]["connections"]) if i in by_id else 0 for i in range(8)}
    shown = " ".join(f"id{i}={conns[i]}" for i in range(8))
    assert all(conns[i] > 0 for i in range(8)), f"backends without connections: {shown}"
    tcp = sum(conns[i] for i in range(4))
    udp = sum(conns[i] for i in range(4, 8))
    reused = (f" ({totals['reused']} of them reused a client source port within "
              f"{REUSE_WINDOW_S}s)" if totals["reused"] else "")
    assert tcp >= totals["tcp"], (f"dataplane counted {tcp} tcp connections, the clients made "
                                  f"at least {totals['tcp']}{reused}")
    assert all(conns[i] == 5 for i in range(4, 8)), \
        f"dataplane's udp flow counts are not 5 per backend: {shown}"
    workers = stats.get("dataplane", {}).get("workers")
    drops = Counter()
    for lc in stats.get("lcores", []):
        drops.update({k: int(v) for k, v in lc.get("drops", {}).items()})
    drop_text = " ".join(f"{k}={v}" for k, v in sorted(drops.items()) if v) or "none"
    return (f"dpstat ({workers} worker(s)): tcp connections {tcp} (clients made >= {totals['tcp']}), "
            f"udp flows {udp}; per backend {shown}; drops: {drop_text}")


def scenario_g_port_reuse(env, totals):
    def tcp_connections():
        return sum(int(b["connections"]) for b in env.dpstat_json().get("backends", [])
                   if int(b["id"]) < 4)
    before = tcp_connections()
    res = env.in_client("sameport", "--count", 4, "--port", 40404)
    check_no_errors(res, "connections from one source port")
    counted = tcp_connections() - before
    assert len(set(res["ports"])) == 4 and counted == 4, (
        f"4 connections one after the other from client port 40404 went to "
        f"{' '.join(f':{p}' for p in res['ports'])} and the dataplane counted {counted} new "
        f"connection(s): a SYN that meets the previous connection's (closing) flow must start "
        f"a new flow (next backend in turn), not reuse the old one")
    return (f"4 connections from one client source port (reused at once) went to "
            f"{' '.join(f':{p}' for p in res['ports'])}; dataplane counted {counted} new")


SCENARIOS = [
    ("a", "sequential round robin", scenario_a_sequential),
    ("b", "concurrent connections", scenario_b_concurrent),
    ("c", "long-lived connection", scenario_c_longlived),
    ("d", "udp", scenario_d_udp),
    ("e", "control plane kill -9/restart", scenario_e_controlplane_restart),
    ("f", "dataplane counters", scenario_f_dpstat),
    ("g", "new connection on a just-used client port", scenario_g_port_reuse),
]


def main():
    if os.geteuid() != 0:
        print("seed: skipped, needs root (network namespaces)")
        return 77
    src = os.environ.get("RONDO_SRC") or os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))
    build = os.environ.get("RONDO_BUILD") or os.path.join(src, "build")
    global TOPO
    TOPO = os.path.join(src, "tools", "lib", "topo.sh")
    sweep_stale()

    env = Env(build, src)
    atexit.register(env.stop)
    # SIGTERM (meson's timeout, Ctrl-C from a wrapper): unwind through finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))

    results = []
    try:
        try:
            env.start()
        except Exception as e:
            env.failed = True
            log(f"SETUP FAILED: {err_text(e) if not isinstance(e, AssertionError) else e}")
            return 1
        totals = Counter()
        for key, title, fn in SCENARIOS:  # in order: (e) restarts the control plane, (f) counts all
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
    log(f"scenarios: {len(results) - failed} of {len(results)} passed")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        sys.exit(client_main(sys.argv[2:]))
    sys.exit(main())
