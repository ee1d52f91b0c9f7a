#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Issue 11: restart, upgrade or crash the dataplane without dropping a connection.

The seed topology (4 HTTP backends, VIP web tcp/80, full-NAT) with the dataplane keeping its
flows in files (--flow-dir, on /dev/shm). One topology for all scenarios; in each, three
clients run through the restart:

  - keep-alive: one TCP connection, a request every 50 ms; it must keep its backend and see
    no error (the longest time without an answer is the gap measured from outside);
  - download: a 64 MiB body (backend.js /bytes) read at a limited rate so that it spans the
    restart, checked by length and sha256;
  - new connections: one request each, 5 s timeout (TCP's retransmissions may hide a blip;
    a reset, a refused or a timed-out request is a failure), counted.

  a. planned, as an upgrade: the dataplane was started through a link, the link is pointed
     at a new copy of the binary, then `rondoctl dataplane restart` (the dataplane execs
     itself: same pid, and /proc/<pid>/exe must be the new copy);
  b. crash: kill -9, then the test (standing in for systemd) starts it again with the same
     arguments (a new pid);
  c. b on net_af_xdp (bpf/rondo_xdp.bpf.o), same dp0: after kill -9 the XDP program stays
     attached (its XSK socket is gone, so VIP frames fall back to the kernel, which drops
     them), and the af_xdp PMD refuses to attach over it ("XDP program already attached",
     rx queue setup fails): the new process must cope, e.g. detach a stale rondo_xdp.
  d. a dataplane with 2 workers on the 1-worker flow dir: refused as a whole (a local
     port's worker depends on the count), a fresh start said so, the VIP answers.

a-c each assert 0 failures, an intact download, one backend on the keep-alive connection, and
flows adopted (> 0) with a gap in the dataplane's log line (and rondoctl's report for a);
the gap is logged from inside (the dataplane) and from outside (the clients), and asserted
only as a sanity bound (GAP_SANITY_S).
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import log, wait_until  # noqa: E402

# ---- what the dataplane and the control plane say (issue 11's interface, in one place) ----
FLOW_DIR_OPT = "--flow-dir"
RESTART_CMD = ("dataplane", "restart", "--timeout", "15")
# rondo-dataplane, on every start but a fresh one (gap in ms, with a decimal; a crash's
# kind goes on: "crash; an upper bound, ...").
RESUMED_RE = re.compile(r"forwarding resumed ([\d.]+) ms after the previous process stopped "
                        r"\((planned restart|crash)[^)]*\), (\d+) flows adopted, (\d+) discarded")
# rondoctl dataplane restart, once the new instance is up.
RESTARTED_RE = re.compile(r"dataplane restarted: pid (\d+), (planned restart|after a crash|fresh start), "
                          r"(\d+) flows adopted \((\d+) discarded\), forwarding resumed after (\d+) ms")
# rondoctl show: somewhere it says how many flows the running dataplane adopted.
SHOW_ADOPTED_RE = re.compile(r"(\d+) flows? adopted|adopted[ :=]+(\d+)")
START_KIND = {"planned": "planned restart", "crash": "crash"}
# The dataplane's ready line (not a bare "ready": a failed af_xdp start says "already attached").
READY = "USER1: ready:"

# ---- the traffic ----
DOWNLOAD_BYTES = 64 * 1024 * 1024
DOWNLOAD_RATE = 8 * 1024 * 1024   # bytes/s the client reads: ~8 s for the body
KA_INTERVAL_S = 0.05
REQUEST_TIMEOUT_S = 5.0
GAP_SANITY_S = 10.0               # a sanity bound, not a target (the target, < 1 s, is logged)
PROGRESS_BEFORE = 10              # answers each loop must have had before the restart
PROGRESS_AFTER = 20               # ... and after the new process took over
BLOCK = 4096


# --------------------------------------------------------------------------------------
# Client side (inside the client namespace; each mode prints one JSON object).
# --------------------------------------------------------------------------------------

class Progress:
    """A one-line file the harness polls: '<answers> <bytes> <done>'."""

    def __init__(self, path):
        self.path = path
        self.last = 0.0

    def put(self, ok, nbytes=0, done=False, force=False):
        now = time.monotonic()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        with open(self.path + ".tmp", "w") as f:
            f.write(f"{ok} {nbytes} {int(done)}\n")
        os.replace(self.path + ".tmp", self.path)


def longest_gap(times):
    """(length, end) of the longest interval between consecutive times (wall clock)."""
    best = (0.0, None)
    for a, b in zip(times, times[1:]):
        if b - a > best[0]:
            best = (b - a, b)
    return best


def client_keepalive(args):
    progress = Progress(args.progress)
    ports, errors, answered = [], [], []
    start = time.monotonic()
    sock = harness.connect_vip(REQUEST_TIMEOUT_S)
    reconnects = 0
    while not os.path.exists(args.stop_file) and time.monotonic() - start < args.max_seconds:
        try:
            ports.append(harness.http_exchange(sock, "/", close=False))
            answered.append(time.time())
        except OSError as e:
            errors.append(f"at {time.time():.3f}: {harness.err_text(e)}")
            sock.close()
            reconnects += 1  # measure on, on a new connection (it counts as failed already)
            try:
                sock = harness.connect_vip(REQUEST_TIMEOUT_S)
            except OSError as e2:
                errors.append(f"reconnect: {harness.err_text(e2)}")
                time.sleep(KA_INTERVAL_S)
        progress.put(len(answered))
        time.sleep(KA_INTERVAL_S)
    sock.close()
    progress.put(len(answered), force=True)
    gap, gap_end = longest_gap(answered)
    return {"ports": ports, "errors": errors, "reconnects": reconnects, "gap": gap,
            "gap_end": gap_end, "first": answered[0] if answered else None}


def download_pattern():
    """Bytes 8..4095 of every block of backend.js's /bytes (xorshift32, low byte)."""
    x, out = 0x2545F491, bytearray(BLOCK)
    for i in range(BLOCK):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    return bytes(out[8:])


def expected_sha256(n):
    h, tail, k = hashlib.sha256(), download_pattern(), 0
    while n > 0:
        part = (struct.pack("<Q", k) + tail)[:min(BLOCK, n)]
        h.update(part)
        n -= len(part)
        k += 1
    return h.hexdigest()


def client_download(args):
    """GET /bytes?n=N, read at most args.rate bytes/s (a small receive buffer, so that the
    backend is held back too), check length and sha256; note when bytes stopped coming."""
    progress = Progress(args.progress)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
    s.settimeout(REQUEST_TIMEOUT_S)
    h = hashlib.sha256()
    got, port, error, stalls = 0, None, None, []
    t0 = time.monotonic()
    last_data = time.time()
    try:
        s.connect((harness.VIP, harness.HTTP_PORT))
        s.sendall(f"GET /bytes?n={args.bytes} HTTP/1.1\r\nHost: {harness.VIP}\r\n\r\n".encode())
        length, hdr, body = harness.read_head(s)
        port = int(hdr.get(b"x-backend", b"0"))
        h.update(body)
        got = len(body)
        while got < length:
            chunk = s.recv(min(65536, length - got))
            if not chunk:
                raise ConnectionError(f"closed after {got} of {length} bytes")
            now = time.time()
            if now - last_data > 0.2:
                stalls.append(round(now - last_data, 3))
            last_data = now
            h.update(chunk)
            got += len(chunk)
            progress.put(0, got)
            ahead = got / args.rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    except (OSError, KeyError, ValueError) as e:
        error = harness.err_text(e)
    finally:
        s.close()
    progress.put(0, got, done=True, force=True)
    return {"bytes": got, "sha256": h.hexdigest(), "port": port, "error": error,
            "seconds": time.monotonic() - t0, "end": time.time(), "stalls": stalls[-5:],
            "ok": error is None and got == args.bytes and h.hexdigest() == expected_sha256(args.bytes)}


def client_newconns(args):
    progress = Progress(args.progress)
    ok, errors, answered = 0, [], []
    start = time.monotonic()
    while not os.path.exists(args.stop_file) and time.monotonic() - start < args.max_seconds:
        t = time.time()
        try:
            harness.one_request(timeout=REQUEST_TIMEOUT_S)
            ok += 1
            answered.append(time.time())
        except OSError as e:
            errors.append(f"at {t:.3f} (+{time.time() - t:.2f}s): {harness.err_text(e)}")
        progress.put(ok)
        time.sleep(0.02)
    progress.put(ok, force=True)
    gap, gap_end = longest_gap(answered)
    return {"ok": ok, "errors": errors, "gap": gap, "gap_end": gap_end}


def _args_loop(p):
    p.add_argument("--progress", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--max-seconds", type=float, default=90)


def _args_download(p):
    p.add_argument("--progress", required=True)
    p.add_argument("--bytes", type=int, default=DOWNLOAD_BYTES)
    p.add_argument("--rate", type=float, default=DOWNLOAD_RATE)


CLIENT_MODES = {
    "keepalive": (client_keepalive, _args_loop),
    "download": (client_download, _args_download),
    "newconns": (client_newconns, _args_loop),
}


# --------------------------------------------------------------------------------------
# Harness side.
# --------------------------------------------------------------------------------------

def read_progress(path):
    try:
        with open(path) as f:
            ok, nbytes, done = f.read().split()
        return int(ok), int(nbytes), done == "1"
    except (OSError, ValueError):
        return 0, 0, False


def log_size(env):
    try:
        return os.path.getsize(env.logs["dataplane"])
    except OSError:
        return 0


def log_since(env, offset):
    with open(env.logs["dataplane"], errors="replace") as f:
        f.seek(offset)
        return f.read()


class Traffic:
    """The three clients of a scenario, started together and collected together."""

    def __init__(self, env, key, download=True):
        self.env = env
        d = os.path.join(env.tmp, f"traffic-{key}")
        os.makedirs(d, exist_ok=True)
        self.stop_file = os.path.join(d, "stop")
        self.prog = {n: os.path.join(d, n) for n in ("keepalive", "download", "newconns")}
        self.procs = {}
        for name in ("keepalive", "newconns"):
            self.procs[name] = env.client_popen(name, "--progress", self.prog[name],
                                                "--stop-file", self.stop_file)
        if download:
            self.procs["download"] = env.client_popen("download", "--progress", self.prog["download"])
        self.alive = [(f"client {n}", p) for n, p in self.procs.items()]

    def answers(self, name):
        return read_progress(self.prog[name])[0]

    def wait_answers(self, what, counts, deadline_s):
        """Wait until each loop has more answers than counts[name] (+ its margin)."""
        wait_until(what, deadline_s,
                   lambda: all(self.answers(n) >= c for n, c in counts.items()),
                   interval=0.05, alive=self.alive + [("rondo-dataplane", self.env.procs["dataplane"])])

    def download_started(self):
        return read_progress(self.prog["download"])[1] >= 2 * 1024 * 1024

    def collect(self, download_deadline_s=60):
        if "download" in self.procs:
            wait_until("the download to finish", download_deadline_s,
                       lambda: read_progress(self.prog["download"])[2], interval=0.1,
                       alive=[("client download", self.procs["download"])]
                       if self.procs["download"].poll() is None else [])
        with open(self.stop_file, "w"):
            pass
        out = {}
        for name, p in self.procs.items():
            stdout, stderr = p.communicate(timeout=REQUEST_TIMEOUT_S * 3)
            if p.returncode != 0:
                raise AssertionError(f"client {name} exited {p.returncode}: {stderr.strip()[-500:]}")
            out[name] = json.loads(stdout)
        return out


def respawn_dataplane(env):
    """Start the dataplane again with the command line of the one before (the supervisor's
    job); return the log offset its lines start at."""
    argv = list(env.procs["dataplane"].args)
    assert argv[:3] == ["ip", "netns", "exec"], argv
    offset = log_size(env)
    dp = env.spawn("dataplane", argv[3], argv[4:])
    try:
        wait_until("the new dataplane to be ready", 30,
                   lambda: READY in log_since(env, offset), interval=0.05,
                   alive=[("rondo-dataplane", dp)])
    except AssertionError as e:
        last = log_since(env, offset).strip().splitlines()[-1:]
        raise AssertionError(f"{e}; its last line: {last[0] if last else '(none)'}") from None
    return offset


def resumed_line(env, offset, kind, deadline_s=20):
    """The dataplane's 'forwarding resumed' line after offset: (gap ms, adopted, discarded)."""
    m = wait_until(f"the dataplane's 'forwarding resumed' line ({kind})", deadline_s,
                   lambda: RESUMED_RE.search(log_since(env, offset)), interval=0.1)
    assert m.group(2) == START_KIND[kind], f"the dataplane says {m.group(2)!r}, not {START_KIND[kind]!r}: {m.group(0)}"
    return float(m.group(1)), int(m.group(3)), int(m.group(4))


def restart_under_traffic(env, key, kind):
    """The body of every scenario: traffic, the restart, checks. Returns the summary line."""
    t = Traffic(env, key)
    t.wait_answers("traffic before the restart", {"keepalive": PROGRESS_BEFORE,
                                                  "newconns": PROGRESS_BEFORE}, 30)
    wait_until("the download to get going", 20, t.download_started, interval=0.05)
    flows_before = sum(b.get("connections", 0) for b in env.dpstat_json().get("backends", []))
    pid_before = env.procs["dataplane"].pid
    offset = log_size(env)
    t_restart = time.time()
    report = None
    if kind == "planned":
        r = env.rondoctl_ok(*RESTART_CMD, timeout=40)
        m = RESTARTED_RE.search(r.stdout)
        assert m, f"rondoctl {' '.join(RESTART_CMD)} said {r.stdout.strip()!r}"
        report = m
        assert int(m.group(1)) == pid_before, f"rondoctl reports pid {m.group(1)}, not {pid_before}"
        assert env.procs["dataplane"].poll() is None, "the dataplane's process ended (planned restart keeps its pid)"
    else:
        env.procs["dataplane"].send_signal(signal.SIGKILL)
        env.procs["dataplane"].wait(10)
        respawn_dataplane(env)
        assert env.procs["dataplane"].pid != pid_before
    gap_ms, adopted, discarded = resumed_line(env, offset, kind)
    # What adoption itself took, per worker (the table's capacity is the default, 2^20).
    for ln in log_since(env, offset).splitlines():
        if re.search(r"worker \d+: (flow table|port quarantine) ", ln):
            log(f"{key}: {ln.split('USER1: ', 1)[-1].strip()}")
    t_resumed = time.time()
    base = {n: t.answers(n) for n in ("keepalive", "newconns")}
    t.wait_answers("traffic after the restart",
                   {n: c + PROGRESS_AFTER for n, c in base.items()}, 30)
    res = t.collect()
    ka, dl, nc = res["keepalive"], res["download"], res["newconns"]
    rest = f"{START_KIND[kind]}, pid {pid_before} -> {env.procs['dataplane'].pid}"
    log(f"{key}: {rest}; dataplane log: gap {gap_ms} ms, {adopted} flows adopted, {discarded} "
        f"discarded (dpstat said {flows_before} connections before)")
    if report:
        log(f"{key}: rondoctl: {report.group(0)}")
    log(f"{key}: from outside: keep-alive longest gap {ka['gap'] * 1000:.0f} ms "
        f"({len(ka['ports'])} answers, backends {harness.fmt_counts(ka['ports'])}); new connections "
        f"longest gap {nc['gap'] * 1000:.0f} ms ({nc['ok']} ok, {len(nc['errors'])} failed); download "
        f"{dl['bytes']} bytes in {dl['seconds']:.1f} s from :{dl['port']}, stalls {dl['stalls']} s")
    show = env.rondoctl_ok("show").stdout
    m = SHOW_ADOPTED_RE.search(show)
    # Checks.
    assert not ka["errors"], f"keep-alive: {len(ka['errors'])} failed: {'; '.join(ka['errors'][:3])}"
    assert len(set(ka["ports"])) == 1, f"keep-alive changed backend: {harness.fmt_counts(ka['ports'])}"
    assert not nc["errors"], f"new connections: {len(nc['errors'])} of {nc['ok'] + len(nc['errors'])} failed: " \
        + "; ".join(nc["errors"][:3])
    assert dl["ok"], f"download: {dl['error'] or 'wrong length or checksum'} ({dl['bytes']} of {DOWNLOAD_BYTES} bytes)"
    assert dl["end"] > t_resumed, "the download ended before the new process took over: it spanned nothing"
    assert adopted > 0, f"the new process adopted no flow ({discarded} discarded)"
    assert ka["gap"] < GAP_SANITY_S and gap_ms < GAP_SANITY_S * 1000, \
        f"a gap beyond the sanity bound: {ka['gap']:.1f} s outside, {gap_ms} ms inside"
    assert m and int(m.group(1) or m.group(2)) > 0, f"rondoctl show does not say flows were adopted:\n{show}"
    if report:
        assert int(report.group(3)) > 0, f"rondoctl reports {report.group(3)} flows adopted"
    log(f"{key}: restart took {t_resumed - t_restart:.2f} s from the test's side")
    return (f"{adopted} flows adopted ({discarded} discarded), gap {gap_ms} ms (dataplane), "
            f"{ka['gap'] * 1000:.0f} ms (keep-alive), {nc['ok']} new connections 0 failed, "
            f"{DOWNLOAD_BYTES >> 20} MiB intact")


def scenario_planned(env, totals):
    """An upgrade: the dataplane was started through a link (as a package's
    /usr/local/bin/rondo-dataplane -> /opt/rondo/<version>/ might be); the link is pointed at
    a new copy of the binary, then `rondoctl dataplane restart`: the process (same pid) runs
    the new copy."""
    link = env.dataplane
    new_bin = os.path.join(env.tmp, "v2", "rondo-dataplane")
    os.makedirs(os.path.dirname(new_bin), exist_ok=True)
    shutil.copy2(os.path.realpath(link), new_bin)
    os.symlink(new_bin, link + ".new")
    os.replace(link + ".new", link)  # atomic, as an installer flips it
    summary = restart_under_traffic(env, "a", "planned")
    running = os.readlink(f"/proc/{env.procs['dataplane'].pid}/exe")
    assert running == new_bin, f"after the restart the dataplane runs {running}, not the upgrade {new_bin}"
    return summary + f"; upgraded: runs {os.path.relpath(new_bin, env.tmp)} (the link's new target)"


def scenario_crash(env, totals):
    return restart_under_traffic(env, "b", "crash")


def switch_to_afxdp(env, xdp_prog):
    """Stop the af_packet dataplane and start it again on net_af_xdp (same dp0, same
    options, its flow dir emptied: its first start adopts nothing); wait for the VIP."""
    argv = list(env.procs["dataplane"].args)
    env.terminate("dataplane")
    vdev = f"--vdev=net_af_xdp0,iface=dp0,start_queue=0,queue_count=1,xdp_prog={xdp_prog}"
    argv = [vdev if a.startswith("--vdev=") else a for a in argv]
    if FLOW_DIR_OPT in argv:
        flow_dir = argv[argv.index(FLOW_DIR_OPT) + 1]
        for name in os.listdir(flow_dir):
            path = os.path.join(flow_dir, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    # libxdp would load its dispatcher; the PMD attaches rondo's program itself.
    argv[4:4] = ["env", "LIBXDP_SKIP_DISPATCHER=1"]
    offset = log_size(env)
    dp = env.spawn("dataplane", argv[3], argv[4:])
    wait_until("the af_xdp dataplane to be ready", 30, lambda: READY in log_since(env, offset),
               interval=0.1, alive=[("rondo-dataplane", dp)])
    assert "XDP program shares the interface" in log_since(env, offset), \
        "the af_xdp dataplane did not find rondo_addrs in the XDP program"
    env.wait_vip()
    xdp = subprocess.run(["ip", "-n", env.ns_lb, "-d", "link", "show", "dp0"],
                         capture_output=True, text=True).stdout
    log("dp0: " + " ".join(ln.strip() for ln in xdp.splitlines() if "xdp" in ln))


def scenario_crash_afxdp(env, totals):
    xdp_prog = os.path.join(env.build, "bpf", "rondo_xdp.bpf.o")
    if not os.path.exists(xdp_prog):
        return "skipped: no bpf/rondo_xdp.bpf.o (clang missing?)"
    switch_to_afxdp(env, xdp_prog)
    # After the kill the XDP program stays attached; the new process must cope with it.
    return restart_under_traffic(env, "c", "crash")


TWO_WORKER_EAL = ["--lcores", "0@0,1@1,2@1", "--main-lcore", "0"]  # as two_workers_test
OTHER_WORKERS_RE = re.compile(r"written by a dataplane with (\d+) workers, this one has (\d+)")


def scenario_other_workers(env, totals):
    """A flow dir written by one worker, a new process with two: refused as a whole and a
    fresh start said so (the flows' local ports would be steered to a worker that does not
    hold them), not adopted half-wrong; the VIP answers again."""
    argv = list(env.procs["dataplane"].args)
    env.terminate("dataplane")
    i = argv.index("-l") if "-l" in argv else argv.index("--lcores")
    argv[i:i + 2] = TWO_WORKER_EAL[:2]
    argv = [a for a in argv if a != "env" and not a.startswith("LIBXDP_")]
    # Two queue pairs on af_packet (the af_xdp port of c has one queue).
    argv = ["--vdev=net_af_packet0,iface=dp0,qpairs=2" if a.startswith("--vdev=") else a for a in argv]
    offset = log_size(env)
    dp = env.spawn("dataplane", argv[3], argv[4:])
    wait_until("the two-worker dataplane to be ready", 30, lambda: READY in log_since(env, offset),
               interval=0.1, alive=[("rondo-dataplane", dp)])
    lines = log_since(env, offset)
    m = OTHER_WORKERS_RE.search(lines)
    assert m and (m.group(1), m.group(2)) == ("1", "2"), \
        f"no refusal of the one-worker flow dir in the two-worker dataplane's log:\n{lines[-2000:]}"
    assert "start: fresh" in lines and not RESUMED_RE.search(lines), \
        "the two-worker dataplane did not start fresh"
    probe = env.wait_vip()
    show = wait_until("rondoctl show to say the dataplane started fresh", 20,
                      lambda: (lambda out: out if "started fresh" in out else None)(env.rondoctl_ok("show").stdout))
    log("d: " + next(ln.strip() for ln in show.splitlines() if "started fresh" in ln))
    return f"refused ({m.group(0)}), started fresh, VIP answers after {probe['attempts']} tries"


def setup(env):
    # Started through a link (scenario a upgrades by pointing it at a new binary).
    link = os.path.join(env.tmp, "rondo-dataplane")
    os.symlink(env.dataplane, link)
    env.dataplane = link
    env.topology_up()
    env.start_backends()
    # On tmpfs: the flow tables are files mapped shared (on disk every update is writeback).
    env.start_dataplane(extra=(FLOW_DIR_OPT, env.shm_dir("flows")))
    env.write_config()
    log("control plane")
    env.start_controlplane()
    env.wait_vip()


SCENARIOS = [
    ("a", "planned restart (rondoctl dataplane restart) under traffic", scenario_planned),
    ("b", "kill -9 and a new process under traffic (af_packet)", scenario_crash),
    ("c", "kill -9 and a new process under traffic (af_xdp)", scenario_crash_afxdp),
    ("d", "a flow dir of another worker count is refused: fresh start", scenario_other_workers),
]

if __name__ == "__main__":
    sys.exit(harness.run("restart", __file__, SCENARIOS, setup, client_modes=CLIENT_MODES))
