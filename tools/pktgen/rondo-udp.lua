-- Pktgen-DPDK load test of rondo (full-NAT, UDP): see tools/pktgen/README.md.
--
--   pktgen -l 0-4 -n 4 -a <nic0> -a <nic1> -- -P -m "[1:2].0,[3:4].1" -f tools/pktgen/rondo-udp.lua
--
-- Port `send` sends UDP to the VIP from `flows` client address:port pairs (range mode:
-- source addresses x source ports); rondo sends every datagram it forwards to Pktgen's
-- `recv` port (the next hop in tools/pktgen/rondo.yaml). For each rate step it reports
-- what left, what came back, and the loss. One-port topology: recv = send.

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;../?.lua"
require "Pktgen"

-- ---- edit for your hosts ----
local send = "0"
local recv = "1"
local rondo_mac = "02:00:00:00:00:01"   -- rondo's NIC
local vip = "203.0.113.10"
local vip_port = 80
local client_net_first = "10.0.0.1"     -- clients: 10.0.0.1 .. 10.0.0.16
local client_net_last = "10.0.0.16"
local sport_min, sport_max = 1024, 65024  -- 64001 ports x 16 addresses: 1,024,016 flows
local size = 64                          -- frame size, FCS included
local rates = { 10, 25, 50, 75, 100 }    -- % of line rate, one step each
local step_ms = 10000
local warmup_ms = 5000                   -- at a low rate: every flow gets created first
local warmup_rate = 5
local pause_ms = 2000                    -- let the queues drain before reading counters
-- ----------------------------

local function setup()
    pktgen.stop(send)
    pktgen.set_proto(send, "udp")
    pktgen.set(send, "size", size)
    pktgen.set(send, "count", 0)         -- send until stopped

    pktgen.range.dst_mac(send, "start", rondo_mac)
    pktgen.range.dst_mac(send, "inc", "00:00:00:00:00:00")
    pktgen.range.dst_mac(send, "min", rondo_mac)
    pktgen.range.dst_mac(send, "max", rondo_mac)

    pktgen.range.dst_ip(send, "start", vip)
    pktgen.range.dst_ip(send, "inc", "0.0.0.0")
    pktgen.range.dst_ip(send, "min", vip)
    pktgen.range.dst_ip(send, "max", vip)
    pktgen.range.dst_port(send, "start", vip_port)
    pktgen.range.dst_port(send, "inc", 0)
    pktgen.range.dst_port(send, "min", vip_port)
    pktgen.range.dst_port(send, "max", vip_port)

    -- Many flows. Range fields all step once per packet, so the address:port pair repeats
    -- after lcm(addresses, ports) packets: 16 and 64001 are coprime, hence 1,024,016 pairs.
    pktgen.range.src_ip(send, "start", client_net_first)
    pktgen.range.src_ip(send, "inc", "0.0.0.1")
    pktgen.range.src_ip(send, "min", client_net_first)
    pktgen.range.src_ip(send, "max", client_net_last)
    pktgen.range.src_port(send, "start", sport_min)
    pktgen.range.src_port(send, "inc", 1)
    pktgen.range.src_port(send, "min", sport_min)
    pktgen.range.src_port(send, "max", sport_max)

    pktgen.range.pkt_size(send, "start", size)
    pktgen.range.pkt_size(send, "inc", 0)
    pktgen.range.pkt_size(send, "min", size)
    pktgen.range.pkt_size(send, "max", size)
    pktgen.set_range(send, "on")
end

local function counters()
    local tx = pktgen.portStats(send, "port")[tonumber(send)].opackets
    local rx = pktgen.portStats(recv, "port")[tonumber(recv)].ipackets
    return tx, rx
end

local function step(rate, ms)
    pktgen.clr()
    pktgen.set(send, "rate", rate)
    pktgen.start(send)
    pktgen.delay(ms)
    pktgen.stop(send)
    pktgen.delay(pause_ms)
    local tx, rx = counters()
    local s = ms / 1000
    local loss = 0
    if tx > 0 then loss = 100 * (tx - rx) / tx end
    printf("rate %3d%%: sent %12.0f pps, received %12.0f pps, loss %.4f%%\n", rate, tx / s, rx / s, loss)
    return tx, rx
end

setup()
printf("warmup: %d ms at %d%%\n", warmup_ms, warmup_rate)
step(warmup_rate, warmup_ms)
for _, rate in ipairs(rates) do
    step(rate, step_ms)
end
printf("done: read rondo's side with rondo-dpstat (busy cycles, drops by reason)\n")
