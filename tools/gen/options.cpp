#include "tools/gen/options.h"

#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>

#include "dataplane/api/ctl.h"

namespace po = boost::program_options;

namespace rondo::gen {
namespace {

bool parse_net(const std::string& s, Ipv4Net* n) {
  const auto slash = s.find('/');
  uint32_t ip = 0;
  if (!api::parse_ipv4(s.substr(0, slash), &ip)) return false;
  unsigned len = 32;
  if (slash != std::string::npos) {
    std::istringstream in(s.substr(slash + 1));
    if (!(in >> len) || !in.eof() || len > 32) return false;
  }
  n->len = static_cast<uint8_t>(len);
  n->base = ip & n->mask();
  return true;
}

bool parse_endpoint(const std::string& s, uint32_t* ip, uint16_t* port) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || !api::parse_ipv4(s.substr(0, colon), ip)) return false;
  std::istringstream in(s.substr(colon + 1));
  unsigned p = 0;
  if (!(in >> p) || !in.eof() || p == 0 || p > 65535) return false;
  *port = static_cast<uint16_t>(p);
  return true;
}

bool parse_range(const std::string& s, uint16_t* lo, uint16_t* hi) {
  unsigned a = 0, b = 0;
  char dash = 0;
  std::istringstream in(s);
  if (!(in >> a >> dash >> b) || dash != '-' || !in.eof() || a < 1 || b > 65535 || a > b) return false;
  *lo = static_cast<uint16_t>(a);
  *hi = static_cast<uint16_t>(b);
  return true;
}

bool parse_mac(const std::string& s, std::array<uint8_t, 6>* mac) {
  unsigned b[6];
  char tail;
  if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
    return false;
  for (int i = 0; i < 6; ++i) {
    if (b[i] > 255) return false;
    (*mac)[i] = static_cast<uint8_t>(b[i]);
  }
  return true;
}

void fail(const std::string& what) { std::cerr << "rondo-gen: " << what << "\n"; }

}  // namespace

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kTcp: return "tcp";
    case Mode::kUdp: return "udp";
    case Mode::kSynFlood: return "syn-flood";
    case Mode::kMixed: return "mixed";
  }
  return "?";
}

std::optional<Options> parse_options(int argc, char** argv, int* exit_code) {
  Options o;
  std::string mode = "tcp", vip = "203.0.113.10:80", client_net = "10.0.0.0/8",
              client_ports = "1024-65535", backend_net = "198.18.1.0/24",
              flood_net = "172.16.0.0/12", gateway, dst_mac;
  po::options_description desc(
      "Usage: rondo-gen [EAL options] -- [options]\n"
      "Sends a flow mix to a middle box (rondo, or any forwarder) on one ethdev port, plays\n"
      "the backends and the clients for what comes back, and reports rates, loss and latency.\n\n"
      "Options");
  desc.add_options()
      ("help,h", "print this help")
      ("mode", po::value(&mode)->default_value(mode),
       "tcp | udp | syn-flood | mixed (tcp flows plus a SYN flood at --flood-rate)")
      ("port", po::value(&o.port)->default_value(o.port), "ethdev port id")
      ("flows", po::value(&o.flows)->default_value(o.flows),
       "concurrent flows (tcp, udp, mixed); with --data-per-conn, connections in flight")
      ("rate", po::value(&o.rate)->default_value(o.rate),
       "data packets/s (tcp, udp, mixed), new connections/s (tcp with --data-per-conn), "
       "SYNs/s (syn-flood); 0: as fast as the window allows")
      ("flood-rate", po::value(&o.flood_rate)->default_value(o.flood_rate),
       "mixed: SYN flood packets/s (0: as fast as the link takes them)")
      ("duration", po::value(&o.duration_s)->default_value(o.duration_s), "measure window, seconds")
      ("warmup", po::bool_switch(&o.warmup),
       "before measuring: establish every flow (tcp), send one packet per flow (udp), or run "
       "one unmeasured second (connections, floods)")
      ("warmup-timeout", po::value(&o.warmup_timeout_s)->default_value(o.warmup_timeout_s),
       "give up establishing flows after this many seconds")
      ("size", po::value(&o.size)->default_value(o.size),
       "frame size of data packets on the wire, FCS included (64-1518)")
      ("vip", po::value(&vip)->default_value(vip), "the virtual service, ADDRESS:PORT")
      ("client-net", po::value(&client_net)->default_value(client_net),
       "client addresses (taken in order, first host first)")
      ("client-ports", po::value(&client_ports)->default_value(client_ports),
       "client source ports LO-HI, used in order for each client address")
      ("backend-net", po::value(&backend_net)->default_value(backend_net),
       "addresses the generator answers for as the backends")
      ("flood-net", po::value(&flood_net)->default_value(flood_net),
       "random source addresses of SYN flood packets")
      ("gateway", po::value(&gateway),
       "an address the middle box uses as next hop: answered in ARP like the others")
      ("dst-mac", po::value(&dst_mac), "the middle box's MAC (default: broadcast)")
      ("data-per-conn", po::value(&o.data_per_conn)->default_value(o.data_per_conn),
       "tcp: -1 keeps flows open; K >= 0 closes each connection after K data packets "
       "(FIN on the last client packet: the handshake ACK when K = 0) and opens a new one")
      ("echo", po::bool_switch(&o.echo), "backends echo every data packet (adds the reply path)")
      ("dsr", po::bool_switch(&o.dsr),
       "direct server return: backend replies reach the clients directly, not through the "
       "middle box (IPIP and GUE encapsulated packets are always decapsulated)")
      ("gue-port", po::value(&o.gue_port)->default_value(o.gue_port), "UDP port of GUE encapsulation")
      ("window", po::value(&o.window)->default_value(o.window),
       "packets in flight through the middle box at most (mixed: half of them for the flood); "
       "keep it below the smallest ring on the path, so that no ring can overflow")
      ("syn-timeout-ms", po::value(&o.syn_timeout_ms)->default_value(o.syn_timeout_ms),
       "an unanswered SYN is sent again (open flows) or given up (connections) after this")
      ("burst", po::value(&o.burst)->default_value(o.burst), "packets per TX burst (1-64)")
      ("mbufs", po::value(&o.mbufs)->default_value(o.mbufs), "mbufs in the pool")
      ("rx-desc", po::value(&o.rx_desc)->default_value(o.rx_desc), "RX descriptors")
      ("tx-desc", po::value(&o.tx_desc)->default_value(o.tx_desc), "TX descriptors")
      ("seed", po::value(&o.seed)->default_value(o.seed), "random seed (flood sources)")
      ("json", po::bool_switch(&o.json), "print the report as one JSON object")
      ("progress", po::bool_switch(&o.progress), "print a live progress line on stderr")
      ("exec-before", po::value(&o.exec_before),
       "shell command run with traffic paused right before the measure window")
      ("exec-after", po::value(&o.exec_after),
       "shell command run with traffic drained right after the measure window");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    fail(e.what());
    *exit_code = 2;
    return std::nullopt;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    *exit_code = 0;
    return std::nullopt;
  }
  *exit_code = 2;
  auto bad = [](const std::string& what) {
    fail(what);
    return std::nullopt;
  };
  if (mode == "tcp") o.mode = Mode::kTcp;
  else if (mode == "udp") o.mode = Mode::kUdp;
  else if (mode == "syn-flood") o.mode = Mode::kSynFlood;
  else if (mode == "mixed") o.mode = Mode::kMixed;
  else return bad("--mode: '" + mode + "' is not tcp, udp, syn-flood or mixed");
  if (!parse_endpoint(vip, &o.vip_ip, &o.vip_port))
    return bad("--vip: '" + vip + "' is not ADDRESS:PORT");
  if (!parse_net(client_net, &o.client_net) || o.client_net.len > 30)
    return bad("--client-net: '" + client_net + "' is not a prefix of /30 or wider");
  if (!parse_range(client_ports, &o.client_port_lo, &o.client_port_hi))
    return bad("--client-ports: '" + client_ports + "' is not LO-HI within 1-65535");
  if (!parse_net(backend_net, &o.backend_net))
    return bad("--backend-net: '" + backend_net + "' is not a prefix");
  if (!parse_net(flood_net, &o.flood_net) || o.flood_net.len > 30)
    return bad("--flood-net: '" + flood_net + "' is not a prefix of /30 or wider");
  if (!gateway.empty() && !api::parse_ipv4(gateway, &o.gateway_ip))
    return bad("--gateway: '" + gateway + "' is not an IPv4 address");
  if (!dst_mac.empty()) {
    if (!parse_mac(dst_mac, &o.dst_mac)) return bad("--dst-mac: '" + dst_mac + "' is not a MAC");
    o.dst_mac_set = true;
  } else {
    o.dst_mac.fill(0xff);
  }
  if (o.size < 64 || o.size > 1518) return bad("--size must be 64-1518");
  if (o.flows == 0 || o.flows > (1u << 24)) return bad("--flows must be 1-16777216");
  if (o.rate < 0 || o.flood_rate < 0) return bad("rates must not be negative");
  if (o.duration_s <= 0) return bad("--duration must be positive");
  if (o.burst == 0 || o.burst > 64) return bad("--burst must be 1-64");
  if (o.window < o.burst) return bad("--window must be at least --burst");
  if (o.data_per_conn < -1) return bad("--data-per-conn must be -1 or more");
  if (o.syn_timeout_ms <= 0) return bad("--syn-timeout-ms must be positive");
  // Open flows each keep one client address and port for the whole run.
  const uint64_t tuples = static_cast<uint64_t>(o.client_net.size() - 2) *
                          (o.client_port_hi - o.client_port_lo + 1u);
  if ((o.mode == Mode::kTcp || o.mode == Mode::kUdp || o.mode == Mode::kMixed) && tuples < o.flows)
    return bad("--client-net and --client-ports give " + std::to_string(tuples) +
                " address:port pairs, fewer than --flows");
  *exit_code = 0;
  return o;
}

}  // namespace rondo::gen
