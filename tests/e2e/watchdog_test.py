#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""systemd's service protocol, with a fake NOTIFY_SOCKET standing in for systemd.

The daemons run as deploy/'s Type=notify units run them: NOTIFY_SOCKET names a unix
datagram socket this test binds (with SO_PASSCRED, so each message's sender pid is known,
as systemd's NotifyAccess=main checks it), WATCHDOG_USEC asks for pings (WATCHDOG_PID
unset: any pid may take it). Steps:
  1. rondo-controlplane (WatchdogSec 2 s, no dataplane yet): READY=1, then WATCHDOG=1 pings.
  2. rondo-dataplane A (two workers, WatchdogSec 1 s, --test-stall-worker 1:3000): READY=1
     after its "ready" line, WATCHDOG=1 every ~0.5 s; the control plane connects to it.
  3. 3 s in, worker 1's loop stops (the hook stalls the loop itself): the pings stop, a
     STATUS names the stuck worker, and none comes for 2.5 s (systemd would have killed it
     1 s after the last ping), while the main lcore still answers rondo-dpstat.
  4. A is killed (SIGKILL, standing in for systemd's watchdog kill), dataplane B starts on
     the same socket: READY=1, pings again; the control plane pinged throughout, and
     connects to B (it survives the dataplane's restarts).
  5. SIGTERM to both: STOPPING=1 from each, exit 0.
No namespaces, no hugepages (--no-huge, net_null with no-rx: idle workers). Needs root (DPDK). Everything it starts
or creates is killed or removed in `finally`.
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (wait_until, remove_dpdk_files)

harness.LOG_NAME = "watchdog"
log = harness.log
wait_until = harness.wait_until

DP_WATCHDOG_US = 1_000_000
CP_WATCHDOG_US = 2_000_000
STALL_MS = 3000
SILENCE_S = 2.5  # no ping for this long after the stall: 2.5 x the dataplane's WatchdogSec


class Notifications:
    """The fake systemd: a bound datagram socket and the messages it got, each with its
    arrival time and the sender's pid (SCM_CREDENTIALS)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []  # (monotonic time, pid, {key: value})
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        cred_len = struct.calcsize("3i")
        while not self.closed:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(cred_len))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:cred_len])[0]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), pid, fields))

    def close(self):
        self.closed = True
        self.thread.join(timeout=2)
        self.sock.close()

    def of(self, pid, key, since=0.0):
        """(time, fields) of pid's messages carrying key, after `since`."""
        with self.lock:
            return [(t, f) for t, p, f in self.messages if p == pid and key in f and t >= since]

    def pings(self, pid, since=0.0):
        return [t for t, _ in self.of(pid, "WATCHDOG", since)]


class Proc:
    """A daemon with its output timestamped line by line (and kept in a log file)."""

    def __init__(self, name, argv, env, logdir):
        self.name = name
        self.lines = []  # (monotonic time, line)
        self.logfile = open(os.path.join(logdir, name + ".log"), "w")
        self.p = subprocess.Popen(argv, env=env, cwd=logdir, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  errors="replace")
        self.pid = self.p.pid
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))
            self.logfile.write(line)
            self.logfile.flush()

    def line_time(self, text):
        """When the first line containing text was printed, or None."""
        return next((t for t, line in list(self.lines) if text in line), None)

    def tail(self, n=20):
        return "\n".join(line for _, line in list(self.lines)[-n:])

    def stop(self, sig=signal.SIGTERM, wait_s=10.0):
        """Signal it and wait; SIGKILL if it outstays wait_s. Returns the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.thread.join(timeout=2)
        self.logfile.close()
        return self.p.returncode


def notify_env(path, watchdog_us):
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC=str(watchdog_us))
    env.pop("WATCHDOG_PID", None)
    return env


def gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


def fmt(xs):
    return "[" + ", ".join(f"{x:.2f}" for x in xs) + "]"


def main():
    if os.geteuid() != 0:
        print("watchdog_test: needs root (DPDK); skipped")
        return 77
    build = os.environ["RONDO_BUILD"]
    dataplane = os.path.join(build, "dataplane", "rondo-dataplane")
    controlplane = os.path.join(build, "controlplane", "rondo-controlplane")
    tmp = tempfile.mkdtemp(prefix="rondo-wd.")
    prefixes = [f"rondo-wd{os.getpid()}a", f"rondo-wd{os.getpid()}b"]
    procs, socks = [], []
    t_start = time.monotonic()

    def rel(t):
        return t - t_start

    try:
        cp_notify = Notifications(os.path.join(tmp, "cp-notify.sock"))
        dp_notify = Notifications(os.path.join(tmp, "dp-notify.sock"))
        socks += [cp_notify, dp_notify]
        dp_sock = os.path.join(tmp, "dp.sock")
        config = os.path.join(tmp, "rondo.yaml")
        with open(config, "w") as f:
            f.write("local_ips: [198.51.100.100]\n"
                    "vips:\n  - name: web\n    address: 203.0.113.10\n    port: 80\n"
                    "    backends:\n      - address: 198.51.100.3\n        port: 3000\n")

        # 1. The control plane, before any dataplane: ready, and pinging.
        cp = Proc("controlplane", [controlplane, "--config", config, "--state-file",
                                   os.path.join(tmp, "state.json"), "--api-socket",
                                   os.path.join(tmp, "api.sock"), "--dataplane-socket", dp_sock,
                                   "--metrics-listen", "none"],
                  notify_env(cp_notify.path, CP_WATCHDOG_US), tmp)
        procs.append(cp)
        alive_cp = [("rondo-controlplane", cp.p)]
        ready = wait_until("READY=1 from the control plane", 10,
                           lambda: cp_notify.of(cp.pid, "READY"), alive=alive_cp)
        t_ready_cp = ready[0][0]
        log(f"control plane: READY=1 at {rel(t_ready_cp):.2f} s, STATUS={ready[0][1].get('STATUS')!r}")

        # 2. Dataplane A: two workers (lcores 1 and 2 share CPU 1: the machine may have two),
        # idle (a null port that receives nothing: they sleep between polls, and must still
        # count as looping), worker 1 set to stall 3 s after it starts.
        def start_dataplane(name, prefix, extra):
            return Proc(name, [dataplane, "--no-huge", "-m", "512", "--no-pci", "--file-prefix", prefix,
                               "--lcores", "0@0,1@1,2@1", "--vdev=net_null0,no-rx=1", "--log-level=*:notice",
                               "--", "--ctl-socket", dp_sock, "--state-dir", os.path.join(tmp, "state"),
                               "--idle-sleep-us", "50", "--flows-per-worker", "65536", *extra],
                        notify_env(dp_notify.path, DP_WATCHDOG_US), tmp)

        dp_a = start_dataplane("dataplane-a", prefixes[0], ["--test-stall-worker", f"1:{STALL_MS}"])
        procs.append(dp_a)
        alive_a = [("rondo-dataplane A", dp_a.p)]
        ready = wait_until("READY=1 from dataplane A", 30, lambda: dp_notify.of(dp_a.pid, "READY"),
                           alive=alive_a)
        t_ready_a, fields = ready[0]
        t_line = dp_a.line_time("ready: ")
        assert t_line is not None and t_line <= t_ready_a + 0.5, "READY=1 came before the 'ready' line"
        assert "2 workers" in fields.get("STATUS", ""), f"STATUS {fields.get('STATUS')!r}"
        log(f"dataplane A (pid {dp_a.pid}): READY=1 at {rel(t_ready_a):.2f} s, STATUS={fields['STATUS']!r}")
        wait_until("the control plane to connect to dataplane A", 10,
                   lambda: cp.line_time(f"connected to dataplane pid {dp_a.pid}"), alive=alive_cp)
        wait_until("the control plane to push its state to dataplane A", 10,
                   lambda: cp.line_time("pushed "), alive=alive_cp)

        # 3. The stall: pings stop, STATUS says who.
        stuck = wait_until("a STATUS naming the stuck worker", STALL_MS / 1000 + 10,
                           lambda: [(t, f) for t, f in dp_notify.of(dp_a.pid, "STATUS")
                                    if "stuck" in f["STATUS"]], alive=alive_a)
        t_stuck, fields = stuck[0]
        t_stall = dp_a.line_time("stuck on purpose")
        assert t_stall is not None, "the worker did not say it stalled"
        assert "worker 1 " in fields["STATUS"] and "worker 0 " not in fields["STATUS"], fields["STATUS"]
        before = dp_notify.pings(dp_a.pid)
        assert len(before) >= 3, f"only {len(before)} pings before the stall"
        g = gaps([t_ready_a] + before)
        assert max(g) < DP_WATCHDOG_US / 1e6, f"a gap between pings reached WatchdogSec: {fmt(g)}"
        log(f"dataplane A: {len(before)} WATCHDOG=1 pings, gaps {fmt(g)} s (WatchdogSec 1 s)")
        log(f"dataplane A: worker 1 stalled at {rel(t_stall):.2f} s; last ping {rel(before[-1]):.2f} s "
            f"({before[-1] - t_stall:+.2f} s); STATUS={fields['STATUS']!r} at {rel(t_stuck):.2f} s")
        cp_pings_before = len(cp_notify.pings(cp.pid))
        end = time.monotonic() + SILENCE_S
        while time.monotonic() < end:
            late = dp_notify.pings(dp_a.pid, since=before[-1] + 1e-6)
            assert not late, f"a ping {late[0] - t_stall:.2f} s after the stall"
            assert dp_a.p.poll() is None, "dataplane A exited during the stall"
            time.sleep(0.1)
        assert before[-1] - t_stall < DP_WATCHDOG_US / 1e6, "pings went on after the stall"
        log(f"dataplane A: no ping for {time.monotonic() - before[-1]:.2f} s after the last "
            f"(systemd would have killed it at +1.00 s)")
        assert len(cp_notify.pings(cp.pid)) > cp_pings_before, "the control plane stopped pinging too"
        # The silence is the watchdog's verdict on worker 1, not a stuck main lcore: that one
        # still answers its control socket.
        r = subprocess.run([os.path.join(build, "controlplane", "rondo-dpstat"), "--dataplane-socket",
                            dp_sock], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, f"rondo-dpstat during the stall: exit {r.returncode}: {r.stderr}"
        log("dataplane A: its main lcore still answers rondo-dpstat during the stall")

        # 4. What systemd would do: kill A, start B.
        dp_a.stop(signal.SIGKILL)
        t_killed = time.monotonic()
        dp_b = start_dataplane("dataplane-b", prefixes[1], [])
        procs.append(dp_b)
        alive_b = [("rondo-dataplane B", dp_b.p)]
        ready = wait_until("READY=1 from dataplane B", 30, lambda: dp_notify.of(dp_b.pid, "READY"),
                           alive=alive_b)
        log(f"dataplane B (pid {dp_b.pid}): READY=1 {ready[0][0] - t_killed:.2f} s after A was killed")
        wait_until("two pings from dataplane B", 5, lambda: len(dp_notify.pings(dp_b.pid)) >= 2,
                   alive=alive_b)
        wait_until("the control plane to connect to dataplane B", 10,
                   lambda: cp.line_time(f"connected to dataplane pid {dp_b.pid}"), alive=alive_cp)
        wait_until("the control plane to push its whole state to dataplane B", 10,
                   lambda: any(t > t_killed and "pushed " in line for t, line in list(cp.lines)),
                   alive=alive_cp)
        cp_pings = cp_notify.pings(cp.pid)
        g = gaps([t_ready_cp] + cp_pings)
        assert max(g) < CP_WATCHDOG_US / 1e6, f"a gap between control-plane pings reached WatchdogSec: {fmt(g)}"
        log(f"control plane: alive through the restart, {len(cp_pings)} pings, gaps {fmt(g)} s "
            f"(WatchdogSec 2 s); connected to A, then to B and pushed its state again")

        # 5. Clean stops.
        for proc, notify in ((dp_b, dp_notify), (cp, cp_notify)):
            rc = proc.stop()
            assert rc == 0, f"{proc.name} exited with {rc}:\n{proc.tail()}"
            wait_until(f"STOPPING=1 from {proc.name}", 2, lambda: notify.of(proc.pid, "STOPPING"))
            log(f"{proc.name}: STOPPING=1, exit 0")
        log(f"passed in {time.monotonic() - t_start:.1f} s")
        return 0
    except AssertionError as e:
        log(f"FAIL: {e}")
        for proc in procs:
            harness.log_err(f"--- {proc.name} (last lines)\n{proc.tail()}\n")
        return 1
    finally:
        for proc in procs:
            proc.stop(signal.SIGKILL, wait_s=5)
        for s in socks:
            s.close()
        for prefix in prefixes:
            harness.remove_dpdk_files(prefix)
        subprocess.run(["rm", "-rf", "--", tmp], check=False)


if __name__ == "__main__":
    sys.exit(main())
