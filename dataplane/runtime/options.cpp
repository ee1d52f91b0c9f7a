#include "dataplane/runtime/options.h"

#include "dataplane/flow/table.h"

#include <boost/program_options.hpp>

#include <iostream>
#include <sstream>

namespace po = boost::program_options;

namespace rondo::dp {

std::vector<std::string> vdev_args(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") break;
    if (a == "--vdev" && i + 1 < argc)
      out.push_back(argv[++i]);
    else if (a.rfind("--vdev=", 0) == 0)
      out.push_back(a.substr(7));
  }
  return out;
}

std::optional<Options> parse_options(int argc, char** argv, int* exit_code) {
  Options o;
  std::string lports = "1024-65535";
  std::string meters = "on";
  std::string stall;
  po::options_description desc(
      "Usage: rondo-dataplane [EAL options] -- [options]\n"
      "Ports are every ethdev the EAL options create (PCI devices, --vdev=net_af_packet0,...);\n"
      "workers are every worker lcore (-l). The main lcore serves the control socket and ARP\n"
      "(the neighbour table).\n\n"
      "Options");
  desc.add_options()
      ("help,h", "print this help")
      ("ctl-socket", po::value(&o.ctl_socket)->default_value(o.ctl_socket),
       "unix socket the control plane connects to")
      ("state-dir", po::value(&o.state_dir)->default_value(o.state_dir),
       "directory kept across restarts: hash.key, the secret keying the flow and neighbour "
       "hashes (made at first start, mode 0600; a restarted dataplane needs the same one to "
       "find its flows; a file that is damaged or readable by others stops the start)")
      ("flow-dir", po::value(&o.flow_dir)->value_name("DIR"),
       "keep each worker's flow table in DIR/flows.<worker>, mapped shared, so that the next "
       "process adopts the flows after a restart, an upgrade or a crash (docs/hot-restart.md); "
       "also DIR/state, the last state the control plane applied, applied again at start before "
       "the control plane reconnects. Put DIR on tmpfs or hugetlbfs (e.g. /dev/shm/rondo or "
       "/run/rondo/flows: memory, gone at reboot); created 0700 if missing. Needed by a planned "
       "restart (the control plane's kRestart: the process execs its binary again, same pid). "
       "Unset: flows in anonymous memory, lost at every restart")
      ("flows-per-worker", po::value(&o.flows_per_worker)->default_value(o.flows_per_worker),
       "flow table capacity of each worker (allocated at start)")
      ("flows6-per-worker", po::value(&o.flows6_per_worker)->value_name("N"),
       "IPv6 flow table capacity of each worker (allocated at start; IPv6 flows and NAT46/NAT64 "
       "flows live there, about 181 bytes a flow, 213 with flow meters; kept in DIR/flows6.<worker> "
       "with --flow-dir). Default: a quarter of --flows-per-worker, at least 1024")
      ("flow-meters", po::value(&meters)->default_value(meters),
       "on: every flow keeps its age and packets and bytes each way, for `rondoctl flow show` "
       "(about 149 bytes a flow); off: about 117 bytes a flow, and flow show reports no traffic")
      ("reply-rate", po::value(&o.reply_rate)->default_value(o.reply_rate),
       "ARP replies the dataplane may send per second (the main lcore answers ARP for "
       "every port), and ICMP echo replies each worker may send per second; bursts of 64; "
       "requests beyond it are dropped as rate_limited")
      ("idle-sleep-us", po::value(&o.idle_sleep_us)->default_value(o.idle_sleep_us),
       "sleep this long when a worker finds no packets (0: busy-poll, for dedicated cores)")
      ("age-sweep-ms", po::value(&o.age_sweep_ms)->default_value(o.age_sweep_ms),
       "each worker looks at every flow record once per this many ms, in small steps every "
       "loop, and reclaims the expired ones: a flow goes at most this long after its timeout")
      ("mtu", po::value(&o.mtu)->default_value(o.mtu),
       "IP MTU of rondo's links (576-9000; above 1500: jumbo frames, docs/operations.md \"MTU "
       "and jumbo frames\"): the ports are set to it and every mbuf holds a whole frame of it "
       "(af_packet: framesz must too). A packet longer than this once rewritten is dropped "
       "(egress_too_big; encap_too_big for ipip and gue) and its sender told the MTU that "
       "fits: ICMP fragmentation-needed when DF is set, ICMPv6 packet too big; an IPv4 "
       "packet without DF is not fragmented")
      ("mbufs", po::value(&o.mbufs)->default_value(o.mbufs), "mbufs in the pool (0: automatic)")
      ("local-ports", po::value(&lports)->default_value(lports),
       "range of full-NAT local ports, split between workers")
      ("rx-desc", po::value(&o.rx_desc)->default_value(o.rx_desc), "RX descriptors per queue")
      ("tx-desc", po::value(&o.tx_desc)->default_value(o.tx_desc), "TX descriptors per queue")
      ("maglev-seed", po::value(&o.maglev_seed)->default_value(o.maglev_seed),
       "seed of the maglev tables and of the maglev and sh VIPs' packet hashes: rondo hosts "
       "behind the same ECMP route must share it (and the pool) to choose the same backend for "
       "a flow; not a secret, unlike hash.key")
      ("test-stall-worker", po::value(&stall)->value_name("INDEX:MS"),
       "tests only: worker INDEX stops advancing its loop MS ms after it starts, as a stuck "
       "worker would (the systemd watchdog test); never in production");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "rondo-dataplane: " << e.what() << "\n";
    *exit_code = 2;
    return std::nullopt;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    *exit_code = 0;
    return std::nullopt;
  }
  unsigned lo = 0, hi = 0;
  char dash = 0;
  std::istringstream in(lports);
  if (!(in >> lo >> dash >> hi) || dash != '-' || !in.eof() || lo < 1 || hi > 65535 || lo > hi) {
    std::cerr << "rondo-dataplane: --local-ports: '" << lports << "' is not a range LO-HI within 1-65535\n";
    *exit_code = 2;
    return std::nullopt;
  }
  if (meters != "on" && meters != "off") {
    std::cerr << "rondo-dataplane: --flow-meters: '" << meters << "' is not on or off\n";
    *exit_code = 2;
    return std::nullopt;
  }
  o.flow_meters = meters == "on";
  if (!stall.empty()) {
    unsigned index = 0, ms = 0;
    char colon = 0;
    std::istringstream st(stall);
    if (!(st >> index >> colon >> ms) || colon != ':' || !st.eof() || index > 1023) {
      std::cerr << "rondo-dataplane: --test-stall-worker: '" << stall << "' is not INDEX:MS\n";
      *exit_code = 2;
      return std::nullopt;
    }
    o.test_stall_worker = static_cast<int>(index);
    o.test_stall_after_ms = ms;
  }
  o.lport_lo = static_cast<uint16_t>(lo);
  o.lport_hi = static_cast<uint16_t>(hi);
  if (o.mtu < 576 || o.mtu > 9000) {
    std::cerr << "rondo-dataplane: --mtu must be 576-9000 (got " << o.mtu << ")\n";
    *exit_code = 2;
    return std::nullopt;
  }
  if (o.age_sweep_ms == 0) {
    std::cerr << "rondo-dataplane: --age-sweep-ms must be at least 1\n";
    *exit_code = 2;
    return std::nullopt;
  }
  if (o.flows_per_worker < 64) {
    std::cerr << "rondo-dataplane: --flows-per-worker must be at least 64\n";
    *exit_code = 2;
    return std::nullopt;
  }
  if (!vm.count("flows6-per-worker")) {
    o.flows6_per_worker = default_flow6_capacity(o.flows_per_worker);
  } else if (o.flows6_per_worker < 64) {
    std::cerr << "rondo-dataplane: --flows6-per-worker must be at least 64\n";
    *exit_code = 2;
    return std::nullopt;
  }
  return o;
}

}  // namespace rondo::dp
