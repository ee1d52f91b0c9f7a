-- Pktgen-DPDK load test of rondo (full-NAT, UDP): see tools/pktgen/README.md.
--
--   pktgen <EAL options> -- -P -m "[1:2].0,[3:4].1" -f /path/to/rondo/tools/pktgen/rondo-udp.lua
--
-- Port `send` sends UDP to the VIP from `flows` client address:port pairs (range mode:
-- source addresses x source ports); rondo sends every datagram it forwards to Pktgen's
-- `recv` port (the next hop in tools/pktgen/rondo.yaml). For each rate step it reports
-- what left, what came back, and the loss. The defaults fit tools/pktgen/memif-run (one
-- memif port: recv = send); environment variables override them (RONDO_PKTGEN_SEND, ...).
--
-- How Pktgen's range mode makes flows (app/pktgen.c, pktgen_setup_packets): each `start`
-- writes the next pool-size packets of the range sequence into the port's range mbuf pool
-- (24,576 mbufs in Pktgen 23.03: pktgen.info.maxMbufsPerPort) and then resends those same
-- mbufs until `stop`. So one start makes at most 24,576 flows, whatever the range holds.
-- The warm-up below starts and stops once per pool-full until it has walked the whole
-- range (every flow then exists in rondo); each measured step then sends the next 24,576
-- flows of the sequence over and over: established flows, in a table holding all of them.

-- Not `require "Pktgen"` (it needs Pktgen's source directory as the working directory):
-- printf is all this script used from it.
local function printf(...) io.write(string.format(...)); io.flush() end
local function env(name, default) return os.getenv("RONDO_PKTGEN_" .. name) or default end

-- ---- edit for your hosts (or set RONDO_PKTGEN_<NAME>) ----
local send = env("SEND", "0")
local recv = env("RECV", send)            -- two-port topology: "1"
local rondo_mac = env("RONDO_MAC", "02:00:00:00:01:01")   -- rondo's port
local vip = "203.0.113.10"
local vip_port = 80
local client_net_first = "10.0.0.1"       -- clients: 10.0.0.1 .. 10.0.0.<n_addrs>
local n_addrs = tonumber(env("ADDRS", "16"))
local sport_min = 1024
local sport_max = tonumber(env("SPORT_MAX", "65024"))   -- 64001 ports x 16 addresses: 1,024,016 flows
local size = 64                           -- frame size, FCS included
local rates = {}                          -- % of the port's link speed, one step each
for r in string.gmatch(env("RATES", "10,25,50,75,100"), "[^,]+") do rates[#rates + 1] = tonumber(r) end
local step_ms = tonumber(env("STEP_MS", "10000"))
local warmup_rate = tonumber(env("WARMUP_RATE", "5"))
local warmup_ms = tonumber(env("WARMUP_MS", "300"))   -- per start
local pause_ms = 500                      -- let the queues drain before reading counters
local quit = env("QUIT", "0") == "1"      -- leave Pktgen at the end (memif-run)
-- ----------------------------

-- Range fields all step once per packet, so the address:port pair repeats after
-- lcm(addresses, ports) packets; with coprime counts (16 and 64001) that is their product.
local function gcd(a, b) while b ~= 0 do a, b = b, a % b end return a end
local n_ports = sport_max - sport_min + 1
local flows = n_addrs * n_ports // gcd(n_addrs, n_ports)
local pool = math.tointeger(pktgen.info.maxMbufsPerPort or 24576)

local function last_addr(first, n)
    local a, b, c, d = first:match("(%d+)%.(%d+)%.(%d+)%.(%d+)")
    local v = ((a * 256 + b) * 256 + c) * 256 + d + n - 1
    return string.format("%d.%d.%d.%d", v // 16777216, v // 65536 % 256, v // 256 % 256, v % 256)
end

local function setup()
    pktgen.stop(send)
    pktgen.set(send, "size", size)
    pktgen.set(send, "count", 0)          -- send until stopped
    -- set_proto changes the single-packet template only; range mode has its own.
    pktgen.range.ip_proto(send, "udp")

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

    local client_net_last = last_addr(client_net_first, n_addrs)
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

local function step(label, rate, ms)
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
    printf("%s rate %3d%%: sent %12.0f pps, received %12.0f pps, loss %.4f%%\n", label, rate, tx / s, rx / s, loss)
    return tx, rx
end

setup()
-- Warm-up: one start per pool-full of the range. A start that sends fewer packets than the
-- pool makes fewer flows: lengthen WARMUP_MS or raise WARMUP_RATE if it says so.
local starts = (flows + pool - 1) // pool
printf("flows %d (%d addresses x %d ports), range pool %d: warm-up %d starts of %d ms at %d%%\n",
       flows, n_addrs, n_ports, pool, starts, warmup_ms, warmup_rate)
local wtx, wrx, short = 0, 0, 0
for i = 1, starts do
    local tx, rx = step(string.format("warm-up %2d/%d", i, starts), warmup_rate, warmup_ms)
    if tx < pool then short = short + 1 end
    wtx, wrx = wtx + tx, wrx + rx
end
printf("warm-up: sent %d, received %d; starts that sent less than the pool: %d\n", wtx, wrx, short)
for _, rate in ipairs(rates) do
    step("step", rate, step_ms)
end
printf("done: read rondo's side with rondo-dpstat (busy cycles, drops by reason)\n")
if quit then pktgen.quit() end
