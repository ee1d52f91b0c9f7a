// rondo-dpstat: ask rondo-dataplane for its counters directly (kGetStats) and print them,
// as a table or as one JSON object. A debugging tool: it does not need the control plane.
#include <boost/program_options.hpp>
#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "controlplane/dataplane/dataplane_client.h"

namespace po = boost::program_options;
using namespace rondo;

namespace {

constexpr const char* kDefaultSocket = "/run/rondo/dataplane.sock";

std::string drop_name(const api::Stats& s, size_t i) {
  return i < s.drop_names.size() ? s.drop_names[i] : "reason_" + std::to_string(i);
}

// Share of cycles spent on packets; -1 when nothing was measured yet.
double busy_percent(const api::Stats& s, const api::LcoreStats& l) {
  const uint64_t busy = s.value(l, "busy_cycles");
  const uint64_t total = busy + s.value(l, "idle_cycles");
  return total ? 100.0 * static_cast<double>(busy) / static_cast<double>(total) : -1;
}

// Column heading of a counter: its name in capitals.
std::string heading(const std::string& name) {
  std::string h = name;
  for (char& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return h;
}

// ---- text ----

void print_text(const api::DataplaneInfo& info, const api::Stats& s) {
  std::printf("dataplane pid %" PRIu32 ", instance %016" PRIx64 ", generation %" PRIu64
              ", %" PRIu32 " workers, %" PRIu32 " ports, mtu %" PRIu32 "\n",
              info.pid, info.instance, s.generation, info.n_workers, info.n_ports, info.mtu);

  // One column per counter the dataplane describes, in its order; BUSY% after them.
  std::printf("\n%-6s", "LCORE");
  for (const auto& c : s.counters) std::printf(" %*s", static_cast<int>(std::max<size_t>(c.name.size(), 9)), heading(c.name).c_str());
  std::printf(" %6s\n", "BUSY%");
  for (const auto& l : s.lcores) {
    std::printf("%-6" PRIu32, l.lcore_id);
    for (size_t i = 0; i < s.counters.size(); ++i)
      std::printf(" %*" PRIu64, static_cast<int>(std::max<size_t>(s.counters[i].name.size(), 9)),
                  i < l.counters.size() ? l.counters[i] : 0);
    const double busy = busy_percent(s, l);
    char busy_text[16] = "-";
    if (busy >= 0) std::snprintf(busy_text, sizeof busy_text, "%.1f", busy);
    std::printf(" %6s\n", busy_text);
  }
  bool any_drop = false;
  for (const auto& l : s.lcores) {
    std::string line;
    for (size_t i = 0; i < l.drops.size(); ++i)
      if (l.drops[i]) line.append(" ").append(drop_name(s, i)).append("=").append(std::to_string(l.drops[i]));
    if (line.empty()) continue;
    if (!any_drop) std::printf("\ndrops:\n");
    any_drop = true;
    std::printf("  lcore %" PRIu32 ":%s\n", l.lcore_id, line.c_str());
  }
  if (!any_drop) std::printf("\ndrops: none\n");

  std::printf("\n%-8s %14s %16s %14s %14s\n", "BACKEND", "PACKETS", "BYTES", "CONNECTIONS",
              "ACTIVE_FLOWS");
  for (const auto& b : s.backends)
    std::printf("%-8" PRIu32 " %14" PRIu64 " %16" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n", b.id,
                b.packets, b.bytes, b.connections, b.active_flows);

  std::printf("\n%-4s %-16s %14s %14s %16s %16s %10s %10s %10s %10s\n", "PORT", "NAME",
              "IPACKETS", "OPACKETS", "IBYTES", "OBYTES", "IMISSED", "IERRORS", "OERRORS",
              "RX_NOMBUF");
  for (const auto& p : s.ports)
    std::printf("%-4" PRIu16 " %-16s %14" PRIu64 " %14" PRIu64 " %16" PRIu64 " %16" PRIu64
                " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "\n",
                p.port_id, p.name.c_str(), p.ipackets, p.opackets, p.ibytes, p.obytes, p.imissed,
                p.ierrors, p.oerrors, p.rx_nombuf);

  // Interfaces: the declared ones, or the implicit one per port (vlan 0: untagged).
  std::printf("\n%-5s %-15s %4s %4s %5s %14s %16s %14s %16s\n", "IFACE", "NAME", "PORT", "VLAN",
              "MTU", "RX_PACKETS", "RX_BYTES", "TX_PACKETS", "TX_BYTES");
  for (const auto& i : s.interfaces)
    std::printf("%-5" PRIu16 " %-15s %4" PRIu16 " %4" PRIu16 " %5" PRIu32 " %14" PRIu64 " %16" PRIu64
                " %14" PRIu64 " %16" PRIu64 "\n",
                i.id, i.name.c_str(), i.port_id, i.vlan, i.mtu, i.rx_packets, i.rx_bytes,
                i.tx_packets, i.tx_bytes);
}

// ---- JSON, by hand: a handful of flat objects does not justify a library ----

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through unchanged
        }
    }
  }
  return out + "\"";
}

class JsonObject {
 public:
  JsonObject& field(const std::string& key, uint64_t v) { return raw(key, std::to_string(v)); }
  JsonObject& field(const std::string& key, const std::string& v) { return raw(key, json_string(v)); }
  JsonObject& raw(const std::string& key, const std::string& json) {
    if (!body_.empty()) body_ += ',';
    body_ += json_string(key);
    body_ += ':';
    body_ += json;
    return *this;
  }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

std::string json_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += items[i];
  }
  return out + "]";
}

void print_json(const api::DataplaneInfo& info, const api::Stats& s) {
  std::vector<std::string> lcores, backends, ports, interfaces;
  for (const auto& l : s.lcores) {
    JsonObject drops;
    for (size_t i = 0; i < l.drops.size(); ++i)
      if (l.drops[i]) drops.field(drop_name(s, i), l.drops[i]);
    JsonObject o;
    o.field("lcore_id", l.lcore_id);
    for (size_t i = 0; i < s.counters.size() && i < l.counters.size(); ++i)
      o.field(s.counters[i].name, l.counters[i]);
    o.raw("drops", drops.str());
    lcores.push_back(o.str());
  }
  for (const auto& b : s.backends) {
    backends.push_back(JsonObject()
                           .field("id", b.id)
                           .field("packets", b.packets)
                           .field("bytes", b.bytes)
                           .field("connections", b.connections)
                           .field("active_flows", b.active_flows)
                           .str());
  }
  for (const auto& p : s.ports) {
    ports.push_back(JsonObject()
                        .field("port_id", p.port_id)
                        .field("name", p.name)
                        .field("ipackets", p.ipackets)
                        .field("opackets", p.opackets)
                        .field("ibytes", p.ibytes)
                        .field("obytes", p.obytes)
                        .field("imissed", p.imissed)
                        .field("ierrors", p.ierrors)
                        .field("oerrors", p.oerrors)
                        .field("rx_nombuf", p.rx_nombuf)
                        .str());
  }
  for (const auto& i : s.interfaces) {
    interfaces.push_back(JsonObject()
                             .field("id", i.id)
                             .field("name", i.name)
                             .field("port_id", i.port_id)
                             .field("vlan", i.vlan)
                             .field("mtu", i.mtu)
                             .field("rx_packets", i.rx_packets)
                             .field("rx_bytes", i.rx_bytes)
                             .field("tx_packets", i.tx_packets)
                             .field("tx_bytes", i.tx_bytes)
                             .str());
  }
  JsonObject dp;
  dp.field("pid", info.pid)
      .field("instance", info.instance)
      .field("workers", info.n_workers)
      .field("ports", info.n_ports)
      .field("mtu", info.mtu);
  JsonObject root;
  root.field("generation", s.generation)
      .raw("dataplane", dp.str())
      .raw("lcores", json_array(lcores))
      .raw("backends", json_array(backends))
      .raw("ports", json_array(ports))
      .raw("interfaces", json_array(interfaces));
  std::printf("%s\n", root.str().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  bool json = false;
  po::options_description desc("Usage: rondo-dpstat [--dataplane-socket PATH] [--json]\nOptions");
  desc.add_options()
      ("help,h", "show this help")
      ("dataplane-socket", po::value(&socket)->default_value(kDefaultSocket)->value_name("PATH"),
       "rondo-dataplane's control socket")
      ("json", po::bool_switch(&json), "print one JSON object instead of tables");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "rondo-dpstat: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }

  cp::UnixDataplaneClient client(socket);
  if (!client.connect()) {
    std::cerr << "rondo-dpstat: " << client.last_error() << "\n";
    return 1;
  }
  auto info = client.hello();
  auto stats = info ? client.stats() : std::nullopt;
  if (!stats) {
    std::cerr << "rondo-dpstat: " << client.last_error() << "\n";
    return 1;
  }
  json ? print_json(*info, *stats) : print_text(*info, *stats);
  return 0;
}
