# SPDX-License-Identifier: BSD-3-Clause
"""Inspection on the seed topology (issue 13), run as scenarios of seed_test.py:

  h. a trace of one request: the SYN is a new flow to the backend that answered, the
     SYN-ACK comes back on the reply path as a hit, the rest are hits, and the FINs move the
     flow's state; each step names its rewrite and output
  i. `rondoctl flow show` on a live keep-alive connection (by either side) names its
     backend, local ip:port, state and traffic; `flow list` finds it; `flow delete` removes
     it, and the connection's next segment is dropped as tcp_no_flow (seen in `drops`)
  j. a SYN to a VIP port with no service shows up in `rondoctl drops --reason no_service`
     with its header
  k. `rondoctl trace --count 3` prints three traced packets while requests go on
"""

import json
import socket
import sys
import time

import harness
from harness import CLIENT_IP, HTTP_PORT, LOCAL_IP, VIP, BACKEND_IP


# ---- client modes (run inside the client namespace) ----

def client_hold(args):
    """One keep-alive connection: a request, then report the source port and backend and
    wait for a line on stdin; then one more request (it may fail: the flow was deleted)."""
    s = harness.connect_vip(3.0)
    backend = harness.http_exchange(s, "/", close=False)
    print(json.dumps({"port": s.getsockname()[1], "backend": backend}), flush=True)
    sys.stdin.readline()
    s.settimeout(2.0)
    try:
        again = harness.http_exchange(s, "/", close=False)
        return {"second": again, "error": None}
    except OSError as e:
        return {"second": None, "error": harness.err_text(e)}
    finally:
        s.close()


def client_poke(args):
    """A TCP connection attempt to the VIP on a port with no service (expected to fail)."""
    try:
        socket.create_connection((VIP, args.port), timeout=1.0).close()
        return {"connected": True}
    except OSError as e:
        return {"connected": False, "error": harness.err_text(e)}


def _args_none(p):
    pass


def _args_port(p):
    p.add_argument("--port", type=int, required=True)


CLIENT_MODES = {"hold": (client_hold, _args_none), "poke": (client_poke, _args_port)}


# ---- helpers ----

def api(env, request, timeout=10.0):
    """One request to the control plane's API socket (JSON line in, JSON line out)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(env.api_sock)
        s.sendall((json.dumps(request) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    answer = json.loads(buf)
    if not answer.get("ok"):
        raise AssertionError(f"API {request['cmd']}: {answer}")
    return answer


def flags_of(packet):
    """The TCP flags of a one-line description ("... tcp [S.] seq ..."), or ""."""
    if " tcp [" not in packet:
        return ""
    return packet.split(" tcp [", 1)[1].split("]", 1)[0]


# ---- scenarios ----

def scenario_h_trace(env, totals):
    api(env, {"cmd": "trace.start", "vip": f"{VIP}:{HTTP_PORT}", "client": CLIENT_IP,
              "count": 40, "seconds": 20})
    res = env.in_client("seq", "--count", 1)
    harness.check_no_errors(res, "the traced request")
    totals["tcp"] += 1
    backend = f"{BACKEND_IP}:{res['ports'][0]}"
    recs = []

    def complete():
        recs.extend(api(env, {"cmd": "trace.read"})["packets"])
        # Both FINs seen, and a packet after the second one (its acknowledgement).
        fins = [i for i, r in enumerate(recs) if "F" in flags_of(r["packet"])]
        return len(fins) >= 2 and len(recs) > fins[1] + 1

    harness.wait_until("the traced connection to close", 10, complete, interval=0.2)
    recs.extend(api(env, {"cmd": "trace.stop"})["packets"])
    shown = "\n".join(f"  {r['kind']} {r['flow']} {r['packet']} -> {r['verdict']} "
                      f"{r['reason'] or ''} {r['state'] or ''} out: {r['out']}" for r in recs)
    syn = recs[0]
    assert syn["kind"] == "client" and flags_of(syn["packet"]) == "S" and syn["flow"] == "new", \
        f"the first traced packet is not the client's SYN as a new flow:\n{shown}"
    assert syn["verdict"] == "tx" and syn["backend"] == backend, \
        f"the SYN did not go to {backend} (the backend that answered):\n{shown}"
    assert syn["out"].startswith(f"{LOCAL_IP}:") and f"> {backend} tcp [S]" in syn["out"], \
        f"the SYN was not rewritten to {LOCAL_IP} -> {backend}:\n{shown}"
    synack = [r for r in recs if flags_of(r["packet"]) == "S."]
    assert synack and synack[0]["kind"] == "reply" and synack[0]["flow"] == "hit" and \
        synack[0]["verdict"] == "tx" and f"{VIP}:{HTTP_PORT} > {CLIENT_IP}:" in synack[0]["out"], \
        f"no SYN-ACK on the reply path as a hit, rewritten to come from the VIP:\n{shown}"
    rest = [r for r in recs[1:] if r["kind"] in ("client", "reply")]
    misses = [r for r in rest if r["flow"] != "hit" or r["verdict"] != "tx"]
    assert not misses, f"packets after the SYN that were not forwarded hits:\n{shown}"
    states = [r["state"] for r in recs if r["state"]]
    closing = [s for s in states if s in ("half_closed", "closing", "time_wait")]
    assert closing, f"the FINs did not move the flow's state (states: {states}):\n{shown}"
    kinds = sum(1 for r in recs if r["kind"] == "client"), sum(1 for r in recs if r["kind"] == "reply")
    return (f"{len(recs)} packets traced ({kinds[0]} client, {kinds[1]} reply): SYN new -> "
            f"{backend}, SYN-ACK hit, {len(rest) - 1} more hits; states {' '.join(dict.fromkeys(states))}")


def scenario_i_flow_show(env, totals):
    import subprocess
    p = env.client_popen("hold", stdin=subprocess.PIPE)
    first = json.loads(p.stdout.readline())
    totals["tcp"] += 1
    cport, backend = first["port"], f"{BACKEND_IP}:{first['backend']}"
    key = [f"{CLIENT_IP}:{cport}", f"{VIP}:{HTTP_PORT}/tcp"]
    shown = env.rondoctl_json("flow", "show", *key)["flows"]
    assert len(shown) == 1, f"flow show {' '.join(key)} found {len(shown)} flows"
    f = shown[0]
    assert f["backend"] == backend and f["state"] == "established" and \
        f["local"].startswith(f"{LOCAL_IP}:") and f["vip_name"] == "web", f"flow show: {f}"
    # SYN, ACK, request (at least) in; SYN-ACK and the response (at least) out.
    assert f["packets_in"] >= 3 and f["packets_out"] >= 2 and f["bytes_out"] > 0 and \
        f["age_s"] >= 0 and 0 < f["expires_in_s"] <= 900, f"flow show traffic/age: {f}"
    text = env.rondoctl_ok("flow", "show", *key).stdout
    assert "state:    established" in text and backend in text, f"flow show text:\n{text}"
    # The same flow by its backend side.
    by_backend = env.rondoctl_json("flow", "show", "--backend-side", backend, f"{f['local']}/tcp")["flows"]
    assert len(by_backend) == 1 and by_backend[0]["client"] == f"{CLIENT_IP}:{cport}", \
        f"flow show --backend-side {backend} {f['local']}/tcp: {by_backend}"
    # Earlier scenarios left about a thousand closed flows: this pages (1000 a page).
    listed = env.rondoctl_json("flow", "list", "--vip", "web", "--limit", 100000)
    assert not listed["more"] and all(x["vip_name"] == "web" for x in listed["flows"]) and \
        any(x["client"] == f"{CLIENT_IP}:{cport}" for x in listed["flows"]), \
        f"flow list --vip web ({len(listed['flows'])} flows) lacks {CLIENT_IP}:{cport}"
    deleted = env.rondoctl_ok("flow", "delete", *key).stdout.strip()
    assert deleted == "deleted 1 flow", f"flow delete said {deleted!r}"
    gone = env.rondoctl("flow", "show", *key)
    assert gone.returncode == 1 and "no such flow" in gone.stderr, \
        f"flow show after delete: exit {gone.returncode} {gone.stderr.strip()}"
    # The connection's next segment has no flow any more: dropped, and kept as a sample.
    out, _ = p.communicate("go\n", timeout=20)
    second = json.loads(out.strip().splitlines()[-1])
    assert second["second"] is None, f"a request on the deleted flow was answered: {second}"

    def sampled():
        drops = env.rondoctl_json("drops", "--reason", "tcp_no_flow")["drops"]
        return [d for d in drops if f"{CLIENT_IP}:{cport} > {VIP}:{HTTP_PORT} tcp" in d["packet"]]

    harness.wait_until("the dropped segment in `drops --reason tcp_no_flow`", 10, sampled)
    return (f"flow {CLIENT_IP}:{cport} -> {backend} via {f['local']}: {f['state']}, "
            f"{f['packets_in']}/{f['packets_out']} packets in/out; found by either side and among "
            f"the {len(listed['flows'])} flows of `flow list --vip web`; deleted; its next segment dropped as tcp_no_flow and sampled "
            f"({second['error']})")


def scenario_j_drops(env, totals):
    res = env.in_client("poke", "--port", 81)
    assert not res["connected"], "a connection to VIP port 81 (no service) succeeded"
    drops = []

    def sampled():
        drops[:] = [d for d in env.rondoctl_json("drops", "--reason", "no_service")["drops"]
                    if f"> {VIP}:81 tcp [S]" in d["packet"]]
        return drops

    harness.wait_until("the SYN to port 81 in `drops --reason no_service`", 10, sampled)
    d = drops[0]
    assert d["reason"] == "no_service" and d["len"] >= 54 and len(d["hex"]) == 2 * min(d["len"], 128), \
        f"drop sample: {d}"
    bad = env.rondoctl("drops", "--reason", "no_such_reason")
    assert bad.returncode == 2 and "not a drop reason" in bad.stderr, \
        f"drops --reason no_such_reason: exit {bad.returncode} {bad.stderr.strip()}"
    return f"no_service sample: {d['packet']} ({d['len']} bytes, {d['ago_s']:.1f}s ago)"


def scenario_k_trace_cli(env, totals):
    p = env.rondoctl_popen("trace", "--vip", "web", "--count", 3, "--seconds", 15)
    made = 0
    deadline = time.monotonic() + 20
    while p.poll() is None and time.monotonic() < deadline:
        res = env.in_client("seq", "--count", 1)
        harness.check_no_errors(res, "requests during a trace")
        made += 1
    totals["tcp"] += made
    out, err = p.communicate(timeout=10)
    assert p.returncode == 0 and "3 packets traced" in out, \
        f"rondoctl trace: exit {p.returncode}\n{out}{err}"
    assert "flow new" in out or "flow hit" in out, f"rondoctl trace shows no flow verdict:\n{out}"
    return f"rondoctl trace --count 3 returned after {made} request(s):\n" + out.rstrip()


SCENARIOS = [
    ("h", "trace of one request", scenario_h_trace),
    ("i", "flow show / list / delete on a live connection", scenario_i_flow_show),
    ("j", "recent drops with their headers", scenario_j_drops),
    ("k", "rondoctl trace", scenario_k_trace_cli),
]
