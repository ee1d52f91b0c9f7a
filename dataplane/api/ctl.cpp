#include "dataplane/api/ctl.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rondo::api {
namespace {

// Bodies are written field by field (never as raw structs) so that padding and
// bool representation never reach the wire.
class Writer {
 public:
  void u8(uint8_t v) { buf_.push_back(v); }
  void u16(uint16_t v) { raw(&v, 2); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void addr(const Addr& a) { raw(a.b.data(), a.b.size()); }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void raw(const void* p, size_t n) {
    auto b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  std::vector<uint8_t> take() { return std::move(buf_); }

 private:
  std::vector<uint8_t> buf_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> p) : p_(p) {}
  bool u8(uint8_t* v) { return raw(v, 1); }
  bool u16(uint16_t* v) { return raw(v, 2); }
  bool u32(uint32_t* v) { return raw(v, 4); }
  bool u64(uint64_t* v) { return raw(v, 8); }
  bool addr(Addr* a) { return raw(a->b.data(), a->b.size()); }
  bool boolean(bool* v) {
    uint8_t b;
    if (!u8(&b) || b > 1) return false;
    *v = b == 1;
    return true;
  }
  bool str(std::string* s) {
    uint32_t n;
    if (!u32(&n) || n > remaining()) return false;
    s->assign(reinterpret_cast<const char*>(p_.data() + off_), n);
    off_ += n;
    return true;
  }
  // A count is plausible only if every element could still fit in what is left;
  // this bounds allocations made on behalf of a hostile length field.
  bool count(uint32_t* n, size_t min_elem_size) {
    return u32(n) && static_cast<uint64_t>(*n) * min_elem_size <= remaining();
  }
  bool raw(void* v, size_t n) {
    if (n > remaining()) return false;
    std::memcpy(v, p_.data() + off_, n);
    off_ += n;
    return true;
  }
  size_t remaining() const { return p_.size() - off_; }
  bool done() const { return off_ == p_.size(); }

 private:
  std::span<const uint8_t> p_;
  size_t off_ = 0;
};

// An interface's identity, as State::interfaces (Interface) and Stats::interfaces
// (IfaceStats) both carry it.
template <class I>
void put_iface(Writer& w, const I& i) {
  w.u16(i.id);
  w.str(i.name);
  w.u16(i.port_id);
  w.u16(i.vlan);
  w.u32(i.mtu);
}
template <class I>
bool get_iface(Reader& r, I* i) {
  return r.u16(&i->id) && r.str(&i->name) && r.u16(&i->port_id) && r.u16(&i->vlan) && r.u32(&i->mtu);
}
constexpr size_t kIfaceWire = 2 + 4 + 2 + 2 + 4;  // put_iface with an empty name

template <typename T>
std::optional<T> fail(std::string* err, const char* what) {
  if (err) *err = what;
  return std::nullopt;
}

}  // namespace

std::vector<uint8_t> frame(MsgType type, uint32_t seq, std::span<const uint8_t> payload) {
  MsgHeader h{kMagic, kVersion, static_cast<uint16_t>(type),
              static_cast<uint32_t>(payload.size()), seq};
  std::vector<uint8_t> out(sizeof h + payload.size());
  std::memcpy(out.data(), &h, sizeof h);
  if (!payload.empty()) std::memcpy(out.data() + sizeof h, payload.data(), payload.size());
  return out;
}

std::string check_header(const MsgHeader& h) {
  if (h.magic != kMagic) return "bad magic";
  if (h.version != kVersion)
    return "unsupported protocol version " + std::to_string(h.version) + " (want " +
           std::to_string(kVersion) + ")";
  if (h.length > kMaxPayload) return "payload too large: " + std::to_string(h.length);
  if (h.type < static_cast<uint16_t>(MsgType::kHello) ||
      h.type > static_cast<uint16_t>(MsgType::kRestartReply))
    return "unknown message type " + std::to_string(h.type);
  return {};
}

std::vector<uint8_t> encode_state(const State& s) {
  Writer w;
  w.u64(s.generation);
  for (const auto& t : kTimeoutFields) w.u32(s.timeouts.*t.ms);
  w.u32(static_cast<uint32_t>(s.vips.size()));
  for (const auto& v : s.vips) {
    w.u32(v.id);
    w.addr(v.ip);
    w.u16(v.port);
    w.u8(static_cast<uint8_t>(v.proto));
    w.u8(static_cast<uint8_t>(v.mode));
    w.u8(static_cast<uint8_t>(v.sched));
    w.u8(static_cast<uint8_t>(v.syncookies));
    w.u8(static_cast<uint8_t>(v.proxy_protocol));
    w.u8(static_cast<uint8_t>(v.on_all_down));
    w.u32(static_cast<uint32_t>(v.backends.size()));
    for (const auto& b : v.backends) {
      w.u32(b.id);
      w.addr(b.ip);
      w.u16(b.port);
      w.u16(b.weight);
      w.u8(b.drained);
      w.u8(b.down);
    }
  }
  w.u32(static_cast<uint32_t>(s.local_ips.size()));
  for (const auto& ip : s.local_ips) w.addr(ip);
  w.u32(static_cast<uint32_t>(s.interfaces.size()));
  for (const auto& i : s.interfaces) {
    put_iface(w, i);
    w.u32(static_cast<uint32_t>(i.addresses.size()));
    for (const auto& a : i.addresses) {
      w.addr(a.addr);
      w.u8(a.len);
    }
  }
  w.u32(static_cast<uint32_t>(s.routes.size()));
  for (const auto& r : s.routes) {
    w.addr(r.prefix);
    w.u8(r.prefix_len);
    w.u16(r.iface);
    w.addr(r.via);
  }
  w.u32(static_cast<uint32_t>(s.neighbours.size()));
  for (const auto& n : s.neighbours) {
    w.addr(n.ip);
    w.raw(n.mac, 6);
    w.u16(n.iface);
  }
  return w.take();
}

std::optional<State> decode_state(std::span<const uint8_t> p, std::string* err) {
  Reader r(p);
  State s;
  uint32_t n;
  if (!r.u64(&s.generation)) return fail<State>(err, "state: truncated header");
  for (const auto& t : kTimeoutFields)
    if (!r.u32(&(s.timeouts.*t.ms))) return fail<State>(err, "state: truncated header");
  constexpr size_t kVipWire = 4 + 16 + 2 + 6 + 4, kBackendWire = 4 + 16 + 2 + 2 + 2;
  if (!r.count(&n, kVipWire)) return fail<State>(err, "state: bad vip count");
  s.vips.resize(n);
  for (auto& v : s.vips) {
    uint8_t proto, mode, sched, cookies, proxy, all_down;
    uint32_t nb;
    if (!r.u32(&v.id) || !r.addr(&v.ip) || !r.u16(&v.port) || !r.u8(&proto) || !r.u8(&mode) ||
        !r.u8(&sched) || !r.u8(&cookies) || !r.u8(&proxy) || !r.u8(&all_down) || !r.count(&nb, kBackendWire))
      return fail<State>(err, "state: truncated vip");
    if (proto != 6 && proto != 17) return fail<State>(err, "state: vip protocol must be tcp or udp");
    if (!known_mode(mode))
      return fail<State>(err, ("state: unknown vip mode " + std::to_string(mode)).c_str());
    if (!known_sched(sched))
      return fail<State>(err, ("state: unknown scheduler " + std::to_string(sched)).c_str());
    v.proto = static_cast<Proto>(proto);
    v.mode = static_cast<Mode>(mode);
    if (cookies > static_cast<uint8_t>(SynCookies::kAuto))
      return fail<State>(err, "state: unknown syncookies mode");
    v.sched = static_cast<Sched>(sched);
    v.syncookies = static_cast<SynCookies>(cookies);
    if (proxy > static_cast<uint8_t>(ProxyProtocol::kV2))
      return fail<State>(err, "state: unknown proxy_protocol");
    v.proxy_protocol = static_cast<ProxyProtocol>(proxy);
    if (all_down > static_cast<uint8_t>(OnAllDown::kOpen))
      return fail<State>(err, "state: unknown on_all_down");
    v.on_all_down = static_cast<OnAllDown>(all_down);
    v.backends.resize(nb);
    for (auto& b : v.backends) {
      if (!r.u32(&b.id) || !r.addr(&b.ip) || !r.u16(&b.port) || !r.u16(&b.weight) ||
          !r.boolean(&b.drained) || !r.boolean(&b.down))
        return fail<State>(err, "state: truncated backend");
    }
  }
  if (!r.count(&n, 16)) return fail<State>(err, "state: bad local ip count");
  s.local_ips.resize(n);
  for (auto& ip : s.local_ips)
    if (!r.addr(&ip)) return fail<State>(err, "state: truncated local ip");
  if (!r.count(&n, kIfaceWire + 4)) return fail<State>(err, "state: bad interface count");
  if (n > kMaxInterfaces) return fail<State>(err, "state: more than 256 interfaces");
  s.interfaces.resize(n);
  for (auto& i : s.interfaces) {
    uint32_t na;
    if (!get_iface(r, &i) || !r.count(&na, 16 + 1))
      return fail<State>(err, "state: truncated interface");
    i.addresses.resize(na);
    for (auto& a : i.addresses)
      if (!r.addr(&a.addr) || !r.u8(&a.len)) return fail<State>(err, "state: truncated interface");
  }
  if (!r.count(&n, 16 + 1 + 2 + 16)) return fail<State>(err, "state: bad route count");
  s.routes.resize(n);
  for (auto& rt : s.routes)
    if (!r.addr(&rt.prefix) || !r.u8(&rt.prefix_len) || !r.u16(&rt.iface) || !r.addr(&rt.via))
      return fail<State>(err, "state: truncated route");
  if (!r.count(&n, 16 + 6 + 2)) return fail<State>(err, "state: bad neighbour count");
  s.neighbours.resize(n);
  for (auto& nb : s.neighbours)
    if (!r.addr(&nb.ip) || !r.raw(nb.mac, 6) || !r.u16(&nb.iface))
      return fail<State>(err, "state: truncated neighbour");
  if (!r.done()) return fail<State>(err, "state: trailing bytes");
  return s;
}

std::vector<uint8_t> encode_info(const DataplaneInfo& i) {
  Writer w;
  w.u32(i.pid);
  w.u32(i.n_workers);
  w.u32(i.n_ports);
  w.u32(i.n_drop_reasons);
  w.u64(i.instance);
  w.u64(i.generation);
  w.u64(i.adopted_flows);
  w.u64(i.discarded_flows);
  w.u8(i.start_kind);
  w.u32(i.gap_ms);
  w.u32(i.mtu);
  return w.take();
}

std::optional<DataplaneInfo> decode_info(std::span<const uint8_t> p, std::string* err) {
  Reader r(p);
  DataplaneInfo i;
  if (!r.u32(&i.pid) || !r.u32(&i.n_workers) || !r.u32(&i.n_ports) || !r.u32(&i.n_drop_reasons) ||
      !r.u64(&i.instance) || !r.u64(&i.generation) || !r.u64(&i.adopted_flows) ||
      !r.u64(&i.discarded_flows) || !r.u8(&i.start_kind) || !r.u32(&i.gap_ms) || !r.u32(&i.mtu) || !r.done())
    return fail<DataplaneInfo>(err, "info: bad length");
  if (i.start_kind >= std::size(kStartKindNames)) return fail<DataplaneInfo>(err, "info: unknown start kind");
  return i;
}

std::vector<uint8_t> encode_ack(const Ack& a) {
  Writer w;
  w.u8(a.ok);
  w.u64(a.generation);
  w.str(a.message);
  return w.take();
}

std::optional<Ack> decode_ack(std::span<const uint8_t> p, std::string* err) {
  Reader r(p);
  Ack a;
  if (!r.boolean(&a.ok) || !r.u64(&a.generation) || !r.str(&a.message) || !r.done())
    return fail<Ack>(err, "ack: bad length");
  return a;
}

namespace {

void put_filter(Writer& w, const FlowFilter& f) {
  w.addr(f.client_ip);
  w.u16(f.client_port);
  w.addr(f.vip_ip);
  w.u16(f.vip_port);
  w.u8(f.proto);
  w.addr(f.backend_ip);
  w.u16(f.backend_port);
  w.addr(f.local_ip);
  w.u16(f.local_port);
}

bool get_filter(Reader& r, FlowFilter* f) {
  return r.addr(&f->client_ip) && r.u16(&f->client_port) && r.addr(&f->vip_ip) &&
         r.u16(&f->vip_port) && r.u8(&f->proto) && r.addr(&f->backend_ip) &&
         r.u16(&f->backend_port) && r.addr(&f->local_ip) && r.u16(&f->local_port);
}

}  // namespace

std::vector<uint8_t> encode_inspect_request(const InspectRequest& q) {
  Writer w;
  w.u8(static_cast<uint8_t>(q.op));
  put_filter(w, q.filter);
  w.u32(q.limit);
  w.u64(q.cursor);
  w.u32(q.seconds);
  w.u32(q.reason);
  return w.take();
}

std::optional<InspectRequest> decode_inspect_request(std::span<const uint8_t> p, std::string* err) {
  Reader r(p);
  InspectRequest q;
  uint8_t op;
  if (!r.u8(&op) || !get_filter(r, &q.filter) || !r.u32(&q.limit) || !r.u64(&q.cursor) ||
      !r.u32(&q.seconds) || !r.u32(&q.reason) || !r.done())
    return fail<InspectRequest>(err, "inspect: bad length");
  if (op < static_cast<uint8_t>(InspectOp::kFlows) || op > static_cast<uint8_t>(InspectOp::kDrops))
    return fail<InspectRequest>(err, "inspect: unknown operation");
  q.op = static_cast<InspectOp>(op);
  const FlowFilter& f = q.filter;
  if (f.proto != 0 && f.proto != 6 && f.proto != 17)
    return fail<InspectRequest>(err, "inspect: protocol must be tcp, udp or any");
  const bool flows = q.op == InspectOp::kFlows || q.op == InspectOp::kFlowDelete;
  if (flows && (q.limit == 0 || q.limit > kMaxFlowPage))
    return fail<InspectRequest>(err, "inspect: a page holds 1 to 1000 flows");
  if (q.op == InspectOp::kTraceStart &&
      (q.limit == 0 || q.limit > kMaxTracePackets || q.seconds == 0 || q.seconds > kMaxTraceSeconds))
    return fail<InspectRequest>(err, "inspect: a trace takes 1 to 10000 packets for 1 to 3600 seconds");
  return q;
}

std::vector<uint8_t> encode_inspect_reply(const InspectReply& a) {
  Writer w;
  w.u64(a.next_cursor);
  w.u64(a.scanned);
  w.u64(a.deleted);
  w.u8(a.armed);
  w.u32(static_cast<uint32_t>(a.flows.size()));
  for (const auto& f : a.flows) {
    w.u32(f.lcore);
    w.u8(f.proto);
    for (const Addr* ip : {&f.client_ip, &f.vip_ip, &f.backend_ip, &f.local_ip}) w.addr(*ip);
    for (uint16_t port : {f.client_port, f.vip_port, f.backend_port, f.local_port}) w.u16(port);
    w.u32(f.backend_id);
    w.u32(f.vip_id);
    w.str(f.state);
    w.u64(f.age_ms);
    w.u64(f.expires_ms);
    w.u8(f.metered);
    for (uint64_t v : {f.packets_in, f.bytes_in, f.packets_out, f.bytes_out}) w.u64(v);
  }
  w.u32(static_cast<uint32_t>(a.trace.size()));
  for (const auto& t : a.trace) {
    w.u32(t.lcore);
    w.u64(t.at_us);
    w.u16(t.in_port);
    w.u8(t.steered);
    for (const std::string* s : {&t.packet, &t.kind, &t.flow, &t.backend, &t.state, &t.verdict,
                                 &t.reason, &t.out})
      w.str(*s);
    w.u16(t.out_port);
    w.u16(t.iface);
  }
  w.u32(static_cast<uint32_t>(a.drops.size()));
  for (const auto& d : a.drops) {
    w.u32(d.lcore);
    w.str(d.reason);
    w.u64(d.ago_ms);
    w.u16(d.in_port);
    w.u32(d.len);
    w.str(d.packet);
    w.str(d.hex);
  }
  return w.take();
}

std::optional<InspectReply> decode_inspect_reply(std::span<const uint8_t> p, std::string* err) {
  Reader r(p);
  InspectReply a;
  uint32_t n;
  if (!r.u64(&a.next_cursor) || !r.u64(&a.scanned) || !r.u64(&a.deleted) || !r.boolean(&a.armed))
    return fail<InspectReply>(err, "inspect reply: truncated header");
  if (!r.count(&n, 4 + 1 + 64 + 8 + 8 + 4 + 16 + 1 + 32)) return fail<InspectReply>(err, "inspect reply: bad flow count");
  a.flows.resize(n);
  for (auto& f : a.flows) {
    bool ok = r.u32(&f.lcore) && r.u8(&f.proto);
    for (Addr* ip : {&f.client_ip, &f.vip_ip, &f.backend_ip, &f.local_ip}) ok = ok && r.addr(ip);
    for (uint16_t* port : {&f.client_port, &f.vip_port, &f.backend_port, &f.local_port})
      ok = ok && r.u16(port);
    ok = ok && r.u32(&f.backend_id) && r.u32(&f.vip_id) && r.str(&f.state) && r.u64(&f.age_ms) &&
         r.u64(&f.expires_ms) && r.boolean(&f.metered);
    for (uint64_t* v : {&f.packets_in, &f.bytes_in, &f.packets_out, &f.bytes_out}) ok = ok && r.u64(v);
    if (!ok) return fail<InspectReply>(err, "inspect reply: truncated flow");
  }
  if (!r.count(&n, 4 + 8 + 2 + 1 + 8 * 4 + 2 + 2)) return fail<InspectReply>(err, "inspect reply: bad trace count");
  a.trace.resize(n);
  for (auto& t : a.trace) {
    bool ok = r.u32(&t.lcore) && r.u64(&t.at_us) && r.u16(&t.in_port) && r.boolean(&t.steered);
    for (std::string* s : {&t.packet, &t.kind, &t.flow, &t.backend, &t.state, &t.verdict, &t.reason,
                           &t.out})
      ok = ok && r.str(s);
    if (!ok || !r.u16(&t.out_port) || !r.u16(&t.iface)) return fail<InspectReply>(err, "inspect reply: truncated trace record");
  }
  if (!r.count(&n, 4 + 4 + 8 + 2 + 4 + 4 + 4)) return fail<InspectReply>(err, "inspect reply: bad drop count");
  a.drops.resize(n);
  for (auto& d : a.drops)
    if (!r.u32(&d.lcore) || !r.str(&d.reason) || !r.u64(&d.ago_ms) || !r.u16(&d.in_port) ||
        !r.u32(&d.len) || !r.str(&d.packet) || !r.str(&d.hex))
      return fail<InspectReply>(err, "inspect reply: truncated drop sample");
  if (!r.done()) return fail<InspectReply>(err, "inspect reply: trailing bytes");
  return a;
}

uint64_t Stats::value(const LcoreStats& l, std::string_view name) const {
  for (size_t i = 0; i < counters.size() && i < l.counters.size(); ++i)
    if (counters[i].name == name) return l.counters[i];
  return 0;
}

std::vector<uint8_t> encode_stats(const Stats& s) {
  Writer w;
  w.u64(s.generation);
  w.u32(static_cast<uint32_t>(s.counters.size()));
  for (const auto& c : s.counters) {
    w.str(c.name);
    w.str(c.metric);
    w.str(c.help);
    w.u8(c.gauge);
  }
  w.u32(static_cast<uint32_t>(s.drop_names.size()));
  for (const auto& n : s.drop_names) w.str(n);
  w.u32(static_cast<uint32_t>(s.lcores.size()));
  for (const auto& l : s.lcores) {
    w.u32(l.lcore_id);
    w.u32(static_cast<uint32_t>(l.counters.size()));
    for (auto v : l.counters) w.u64(v);
    w.u32(static_cast<uint32_t>(l.drops.size()));
    for (auto d : l.drops) w.u64(d);
  }
  w.u32(static_cast<uint32_t>(s.backends.size()));
  for (const auto& b : s.backends) {
    w.u32(b.id);
    for (uint64_t v : {b.packets, b.bytes, b.connections, b.active_flows, b.quarantined, b.port_capacity,
                       b.table_entries, b.table_size})
      w.u64(v);
  }
  w.u32(static_cast<uint32_t>(s.ports.size()));
  for (const auto& p : s.ports) {
    w.u16(p.port_id);
    w.str(p.name);
    for (uint64_t v : {p.ipackets, p.opackets, p.ibytes, p.obytes, p.imissed, p.ierrors,
                       p.oerrors, p.rx_nombuf})
      w.u64(v);
  }
  w.u32(static_cast<uint32_t>(s.interfaces.size()));
  for (const auto& i : s.interfaces) {
    put_iface(w, i);
    for (uint64_t v : {i.rx_packets, i.rx_bytes, i.tx_packets, i.tx_bytes}) w.u64(v);
  }
  return w.take();
}

std::optional<Stats> decode_stats(std::span<const uint8_t> p, std::string* err) {
  Reader r(p);
  Stats s;
  uint32_t n;
  if (!r.u64(&s.generation) || !r.count(&n, 4 * 3 + 1))
    return fail<Stats>(err, "stats: bad counter count");
  s.counters.resize(n);
  for (auto& c : s.counters)
    if (!r.str(&c.name) || !r.str(&c.metric) || !r.str(&c.help) || !r.boolean(&c.gauge))
      return fail<Stats>(err, "stats: truncated counter description");
  if (!r.count(&n, 4)) return fail<Stats>(err, "stats: truncated");
  s.drop_names.resize(n);
  for (auto& name : s.drop_names)
    if (!r.str(&name)) return fail<Stats>(err, "stats: truncated drop name");
  if (!r.count(&n, 4 + 4 + 4)) return fail<Stats>(err, "stats: bad lcore count");
  s.lcores.resize(n);
  for (auto& l : s.lcores) {
    uint32_t nc, nd;
    if (!r.u32(&l.lcore_id)) return fail<Stats>(err, "stats: truncated lcore");
    // Exactly one value per described counter: readers index one by the other.
    if (!r.count(&nc, 8) || nc != s.counters.size())
      return fail<Stats>(err, "stats: lcore counters do not match their descriptions");
    l.counters.resize(nc);
    for (auto& v : l.counters)
      if (!r.u64(&v)) return fail<Stats>(err, "stats: truncated lcore");
    if (!r.count(&nd, 8)) return fail<Stats>(err, "stats: bad drop count");
    l.drops.resize(nd);
    for (auto& d : l.drops)
      if (!r.u64(&d)) return fail<Stats>(err, "stats: truncated drops");
  }
  if (!r.count(&n, 4 + 8 * 8)) return fail<Stats>(err, "stats: bad backend count");
  s.backends.resize(n);
  for (auto& b : s.backends) {
    if (!r.u32(&b.id)) return fail<Stats>(err, "stats: truncated backend");
    for (uint64_t* v : {&b.packets, &b.bytes, &b.connections, &b.active_flows, &b.quarantined,
                        &b.port_capacity, &b.table_entries, &b.table_size})
      if (!r.u64(v)) return fail<Stats>(err, "stats: truncated backend");
  }
  if (!r.count(&n, 2 + 4 + 8 * 8)) return fail<Stats>(err, "stats: bad port count");
  s.ports.resize(n);
  for (auto& pt : s.ports) {
    if (!r.u16(&pt.port_id) || !r.str(&pt.name)) return fail<Stats>(err, "stats: truncated port");
    for (uint64_t* v : {&pt.ipackets, &pt.opackets, &pt.ibytes, &pt.obytes, &pt.imissed,
                        &pt.ierrors, &pt.oerrors, &pt.rx_nombuf})
      if (!r.u64(v)) return fail<Stats>(err, "stats: truncated port");
  }
  if (!r.count(&n, kIfaceWire + 8 * 4)) return fail<Stats>(err, "stats: bad interface count");
  s.interfaces.resize(n);
  for (auto& i : s.interfaces) {
    if (!get_iface(r, &i))
      return fail<Stats>(err, "stats: truncated interface");
    for (uint64_t* v : {&i.rx_packets, &i.rx_bytes, &i.tx_packets, &i.tx_bytes})
      if (!r.u64(v)) return fail<Stats>(err, "stats: truncated interface");
  }
  if (!r.done()) return fail<Stats>(err, "stats: trailing bytes");
  return s;
}

namespace {

bool write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_all(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

}  // namespace

bool send_msg(int fd, MsgType type, uint32_t seq, std::span<const uint8_t> payload) {
  auto f = frame(type, seq, payload);
  return write_all(fd, f.data(), f.size());
}

bool recv_msg(int fd, MsgHeader* h, std::vector<uint8_t>* payload, std::string* err) {
  if (!read_all(fd, reinterpret_cast<uint8_t*>(h), sizeof *h)) {
    if (err) *err = "connection closed";
    return false;
  }
  if (auto e = check_header(*h); !e.empty()) {
    if (err) *err = e;
    return false;
  }
  payload->resize(h->length);
  if (!read_all(fd, payload->data(), h->length)) {
    if (err) *err = "connection closed mid-message";
    return false;
  }
  return true;
}

std::string format_ipv4(uint32_t ip) {
  char buf[INET_ADDRSTRLEN];
  uint32_t n = htonl(ip);
  inet_ntop(AF_INET, &n, buf, sizeof buf);
  return buf;
}

bool parse_ipv4(const std::string& s, uint32_t* ip) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  *ip = ntohl(a.s_addr);
  return true;
}

std::string format_addr(const Addr& a) {
  if (a.is_v4()) return format_ipv4(a.v4());
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, a.b.data(), buf, sizeof buf);
  return buf;
}

std::optional<Addr> parse_addr(std::string_view s) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string z(s);  // inet_pton wants a terminated string
  in_addr a4{};
  if (inet_pton(AF_INET, z.c_str(), &a4) == 1) return Addr::from_v4(ntohl(a4.s_addr));
  Addr a;
  if (inet_pton(AF_INET6, z.c_str(), a.b.data()) != 1) return std::nullopt;
  // ::ffff:a.b.c.d is how an IPv4 address is held: as v6 text it would silently become v4.
  if (a.is_v4()) return std::nullopt;
  return a;
}

std::string format_endpoint(const Addr& a, uint16_t port) {
  if (a.is_v4()) return format_addr(a) + ":" + std::to_string(port);
  return "[" + format_addr(a) + "]:" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint(std::string_view s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = s.substr(0, colon), port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5) return std::nullopt;
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p > 65535) return std::nullopt;
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  auto a = parse_addr(host);
  // v4 without brackets, v6 only within them.
  if (!a || a->is_v4() == bracketed) return std::nullopt;
  return Endpoint{*a, static_cast<uint16_t>(p)};
}

}  // namespace rondo::api
