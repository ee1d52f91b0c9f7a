#include "controlplane/cli/cli.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <iostream>
#include <sstream>
#include <thread>

#include "controlplane/state/model.h"

namespace rondo::cp {
namespace {

namespace po = boost::program_options;
using json = nlohmann::json;

constexpr const char* kUsage = R"(Usage: rondoctl [--socket PATH] [--json] COMMAND [ARGS] [OPTIONS]

Commands:
  vip add NAME ADDRESS:PORT [--proto tcp|udp] [--scheduler rr|wrr|maglev|sh|lc]
          [--proxy-protocol off|v2] [--mode fullnat|ipip|gue|l2dsr] [--on-all-down drop|open]
  vip remove NAME [--force]
  vip list
  vip drain NAME  stop announcing the VIP by BGP (the dataplane still serves what arrives)
  vip undrain NAME
  backend add VIP ADDRESS:PORT [--weight N]
  backend remove VIP ADDRESS:PORT [--force]
  backend drain VIP ADDRESS:PORT [--wait] [--timeout SECONDS]
  backend undrain VIP ADDRESS:PORT
  backend weight VIP ADDRESS:PORT N
  show [VIP]     interfaces (port, VLAN, MTU, addresses, packets and bytes in and out), then
                 vips (mode, scheduler) and backends: weight, health, drain state, active
                 flows, new connections/s, packets, bytes; TABLE%: a maglev or sh backend's
                 share of its VIP's lookup table (entries it owns / 65537); a warning for a
                 VIP whose backends are all down, saying what its --on-all-down does
  stats          dataplane counters: per lcore, drops by reason, per backend, per port, per
                 interface
  status         control plane: generation, dataplane connection, last push
  reload         re-read the config file and apply it as a diff (a bad file changes nothing)
  dataplane restart [--no-wait] [--timeout SECONDS]
                 restart rondo-dataplane in place, keeping its flows (it needs --flow-dir):
                 prints its answer, then waits (default 30 s) for the new process to be in
                 sync and prints what it took over: flows adopted, forwarding gap
  flow show CLIENT:PORT VIP:PORT/PROTO
  flow show --backend-side BACKEND:PORT LOCAL:PORT/PROTO
                 one flow: owning lcore, state, backend, local ip:port, age, expiry,
                 packets and bytes each way
  flow list [FILTER] [--limit N]
                 flows matching FILTER (default limit 100)
  flow delete CLIENT:PORT VIP:PORT/PROTO | flow delete FILTER
                 remove one flow, or every flow matching FILTER (e.g. --backend A:P)
  trace [--vip V] [--client ADDRESS[:PORT]] [--backend ADDRESS[:PORT]] [--count N] [--seconds S]
                 the next N packets matching (default 10, within 10 s), step by step:
                 class, flow hit/new/miss, backend, rewrite, output, or drop reason
  drops [--reason R]
                 recent dropped packets the workers kept, per reason

FILTER (flow list, flow delete): --vip NAME|ADDRESS[:PORT] --client ADDRESS[:PORT]
  --backend ADDRESS[:PORT] --local ADDRESS[:PORT] --proto tcp|udp

ADDRESS:PORT is 198.51.100.3:3000 for IPv4, [2001:db8:100::3]:3000 for IPv6 (brackets).

Options (anywhere on the line):
  --socket PATH  the control plane's API socket (default /run/rondo/controlplane.sock)
  --json         print the control plane's answer as JSON
  -h, --help     this text

  --force        vip/backend remove: remove even with active flows
  --wait         backend drain: return once the backend has no active flows,
                 printing the count as it falls
  --timeout S    with --wait: give up after S seconds (exit 1); dataplane restart: how
                 long to wait for the new process (default 30)
  --no-wait      dataplane restart: return once the dataplane accepted
  --weight N     backend add: weight 0-65535 (default 1; 0 takes no new connections)
  --proto P      vip add: tcp (default) or udp
  --scheduler S  vip add: rr (round-robin, the default), wrr (weighted round-robin),
                 maglev (consistent hash of the connection), sh (hash of the client address),
                 lc (fewest active flows per unit of weight)
  --proxy-protocol P  vip add: v2 sends each backend a PROXY protocol v2 header with the
                 client's address (tcp, fullnat only; off by default)
  --mode M       vip add: fullnat (the default: replies come back through rondo), or direct
                 server return, the backend answering the client itself: ipip (IP-in-IP),
                 gue (UDP-encapsulated, port 6080) or l2dsr (the backend's MAC, on-link
                 backends); in DSR modes backends use the VIP's port (docs/modes.md)
  --on-all-down A  vip add: when health checks have every backend down, drop new
                 connections (the default) or open: send them to the down backends anyway

Exit codes: 0 done; 1 failed or refused (unknown vip or backend, exists already,
needs --force, bad config file, timeout, control plane unreachable, restart refused or
the dataplane came back without its flows); 2 usage error.
)";

struct Usage {
  std::string text;
};

[[noreturn]] void usage_error(const std::string& text) { throw Usage{text}; }

uint16_t parse_weight(const std::string& s) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v > 65535)
    usage_error(s + " is not a weight (0-65535)");
  return static_cast<uint16_t>(v);
}

double parse_seconds(const std::string& s) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || !(v > 0) || !std::isfinite(v))
    usage_error("--timeout: " + s + " is not a number of seconds (> 0)");
  return v;
}

uint64_t parse_count(const std::string& s, const char* what, uint64_t lo, uint64_t hi) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi)
    usage_error(std::string(what) + ": " + s + " is not a number from " + std::to_string(lo) + " to " +
                std::to_string(hi));
  return v;
}

std::string checked_name(const std::string& s, const char* what) {
  if (auto why = check_name(s); !why.empty()) usage_error(std::string(what) + " " + why);
  return s;
}

std::pair<api::Addr, uint16_t> checked_endpoint(const std::string& s) {
  std::string why;
  auto ep = parse_endpoint(s, &why);
  if (!ep) usage_error(why);
  return *ep;
}

// The positional arguments of a command, checked for number.
std::vector<std::string> positionals(const po::variables_map& vm, size_t min, size_t max,
                                     const char* shape) {
  std::vector<std::string> args;
  if (vm.count("arg")) args = vm["arg"].as<std::vector<std::string>>();
  if (args.size() < min) usage_error(std::string("missing arguments: expected ") + shape);
  if (args.size() > max) usage_error("unexpected argument \"" + args[max] + "\" (expected " + shape + ")");
  return args;
}

json backend_request(const char* cmd, const std::string& vip, const std::string& endpoint) {
  const auto [ip, port] = checked_endpoint(endpoint);
  return {{"cmd", cmd}, {"vip", checked_name(vip, "vip name")}, {"address", api::format_addr(ip)},
          {"port", port}};
}

std::string pad(const std::string& s, size_t w, bool right) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

// A text table: columns sized to their widest cell; numbers right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> right)
      : right_(std::move(right)) {
    rows_.push_back(std::move(header));
  }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string str() const {
    std::vector<size_t> w(rows_[0].size(), 0);
    for (const auto& r : rows_)
      for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
    std::string out;
    for (const auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) {
        if (i) line += "  ";
        line += pad(r[i], w[i], right_[i]);
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    return out;
  }

 private:
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

std::string num(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_number_unsigned() || v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return v.dump();
}

// "ADDRESS:PORT" of an answer's address and port fields: "[v6]:port" for IPv6 (RFC 5952
// section 6), as the control plane writes endpoints itself.
std::string endpoint_of(const json& address, const json& port) {
  const std::string a = address.get<std::string>();
  return (a.find(':') != std::string::npos ? "[" + a + "]" : a) + ":" + num(port);
}

std::string rate(const json& v) {
  if (v.is_null()) return "-";
  char buf[32];
  const double d = v.get<double>();
  std::snprintf(buf, sizeof buf, d >= 100 ? "%.0f" : "%.1f", d);
  return buf;
}

std::string bytes_cell(const json& v) { return v.is_null() ? "-" : format_bytes(v.get<double>()); }

std::string age(const json& t) {
  if (t.is_null()) return "never";
  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s ago", std::max(0.0, now - t.get<double>()));
  return buf;
}

std::string status_line(const json& s) {
  std::string out = "generation " + num(s["generation"]) + ", ";
  if (s["dataplane_connected"].get<bool>()) {
    const json& dp = s["dataplane"];
    out += "dataplane connected";
    if (dp.is_object())
      out += " (pid " + num(dp["pid"]) + ", " + num(dp["workers"]) + " workers)";
    out += s["in_sync"].get<bool>() ? ", in sync" : ", NOT in sync yet";
    out += ", counters " + age(s["stats_time"]);
  } else {
    out += "dataplane NOT connected (it forwards with the last state it got); counters unavailable";
  }
  return out + "\n";
}

int exit_code_for(const json& answer) {
  return answer.value("code", "") == "invalid" ? kExitUsage : kExitFailed;
}

void print_failure(const json& answer, const CliInvocation& inv, std::ostream& out,
                   std::ostream& err) {
  if (inv.json) out << answer.dump() << "\n";
  if (answer.contains("details"))
    for (const auto& d : answer["details"]) err << d.get<std::string>() << "\n";
  err << "rondoctl: " << inv.command << ": " << answer.value("error", "failed") << "\n";
}

void print_changes(const json& answer, std::ostream& out, std::ostream& err) {
  const auto& changes = answer["changes"];
  for (const auto& c : changes) out << c.get<std::string>() << "\n";
  if (answer.contains("note")) {
    err << "rondoctl: note: " << answer["note"].get<std::string>() << "\n";
  } else if (changes.empty()) {
    out << "no change\n";
  }
}

// Between two polls of a wait that started at `start`: false once `timeout_s` has passed
// (give up), else sleep one `poll`, or less so as to wake at the deadline.
bool pause(std::chrono::steady_clock::time_point start, std::optional<double> timeout_s,
           std::chrono::milliseconds poll) {
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (timeout_s && waited >= *timeout_s) return false;
  if (timeout_s) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::duration<double>(*timeout_s - waited));
    poll = std::min(poll, std::max(left, std::chrono::milliseconds(1)));
  }
  std::this_thread::sleep_for(poll);
  return true;
}

int wait_drained(ApiClient& client, const CliInvocation& inv, std::ostream& out,
                 std::ostream& err, std::chrono::milliseconds poll) {
  using Clock = std::chrono::steady_clock;
  json get = inv.request;
  get["cmd"] = "backend.get";
  const std::string who = "backend " + inv.request["vip"].get<std::string>() + " " +
                          endpoint_of(inv.request["address"], inv.request["port"]);
  const auto start = Clock::now();
  std::optional<uint64_t> last;
  bool said_unknown = false;
  for (;;) {
    auto answer = client.call(get);
    if (!answer) {
      err << "rondoctl: lost the control plane while waiting: " << client.error() << "\n";
      return kExitFailed;
    }
    if (!answer->value("ok", false)) {
      print_failure(*answer, inv, out, err);
      return kExitFailed;
    }
    const json& flows = (*answer)["backend"]["active_flows"];
    if (flows.is_null()) {
      if (!said_unknown) {
        if (inv.json) out << json{{"active_flows", nullptr}}.dump() << "\n";
        else out << who << ": active flows unknown (the dataplane is not connected); waiting\n";
        out.flush();
      }
      said_unknown = true;
    } else {
      said_unknown = false;
      const uint64_t n = flows.get<uint64_t>();
      if (!last || *last != n) {
        if (inv.json) out << json{{"active_flows", n}}.dump() << "\n";
        else out << who << ": " << n << (n == 1 ? " active flow\n" : " active flows\n");
        out.flush();
        last = n;
      }
      if (n == 0) {
        if (!inv.json) out << who << " is drained: no active flows left\n";
        return kExitOk;
      }
    }
    if (!pause(start, inv.timeout_s, poll)) {
      err << "rondoctl: backend drain: timeout after " << *inv.timeout_s << " s: " << who
          << (last ? " still has " + std::to_string(*last) + (*last == 1 ? " active flow" : " active flows")
                   : ": active flows unknown")
          << "\n";
      return kExitFailed;
    }
  }
}

// flow list / show / delete: fetch further pages (list: up to max_flows; delete: until
// every matching flow is gone), then print.
int finish_flows(ApiClient& client, const CliInvocation& inv, json answer, std::ostream& out,
                 std::ostream& err) {
  json flows = answer["flows"];
  uint64_t deleted = answer.value("deleted", uint64_t{0});
  const bool list = inv.command == "flow list", del = inv.command == "flow delete";
  while ((list || del) && !answer["next_cursor"].is_null() && (del || flows.size() < inv.max_flows)) {
    json next = inv.request;
    next["cursor"] = answer["next_cursor"];
    if (list) next["limit"] = std::min<uint64_t>(inv.max_flows - flows.size(), 1000);
    auto a = client.call(next);
    if (!a) {
      err << "rondoctl: " << inv.command << ": " << client.error() << "\n";
      return kExitFailed;
    }
    if (!a->value("ok", false)) {
      print_failure(*a, inv, out, err);
      return exit_code_for(*a);
    }
    answer = *a;
    deleted += answer.value("deleted", uint64_t{0});
    for (auto& f : answer["flows"]) flows.push_back(f);
  }
  const bool more = list && !answer["next_cursor"].is_null();
  if (inv.json) {
    json o = {{"ok", true}, {"flows", flows}, {"more", more}};
    if (del) o["deleted"] = deleted;
    out << o.dump() << "\n";
  } else if (inv.command == "flow show") {
    if (flows.empty()) {
      err << "rondoctl: flow show: no such flow\n";
      return kExitFailed;
    }
    out << format_flow(flows[0]);
  } else if (del) {
    out << "deleted " << deleted << (deleted == 1 ? " flow\n" : " flows\n");
  } else {
    out << format_flows(flows);
    if (more) out << "(more flows match: --limit N shows more)\n";
  }
  if (inv.command == "flow show" && flows.empty()) return kExitFailed;
  return kExitOk;
}

// trace: the trace is armed; read what the workers recorded until `count` packets came,
// the time is up, or no worker is armed any more; then disarm and print.
int finish_trace(ApiClient& client, const CliInvocation& inv, std::ostream& out, std::ostream& err,
                 std::chrono::milliseconds poll) {
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::seconds(inv.trace_seconds) + std::chrono::milliseconds(300);
  json packets = json::array();
  bool armed = true;
  while (armed && packets.size() < inv.trace_count && Clock::now() < end) {
    std::this_thread::sleep_for(poll);
    auto a = client.call({{"cmd", "trace.read"}});
    if (!a || !a->value("ok", false)) {
      if (a) print_failure(*a, inv, out, err);
      else err << "rondoctl: trace: " << client.error() << "\n";
      return kExitFailed;
    }
    armed = (*a)["armed"].get<bool>();
    for (auto& p : (*a)["packets"]) packets.push_back(p);
  }
  auto a = client.call({{"cmd", "trace.stop"}});
  if (a && a->value("ok", false))
    for (auto& p : (*a)["packets"]) packets.push_back(p);
  // Every worker traces up to `count`: keep the first `count` of all of them.
  if (packets.size() > inv.trace_count) packets.erase(packets.begin() + inv.trace_count, packets.end());
  if (inv.json) out << json{{"ok", true}, {"packets", packets}}.dump() << "\n";
  else out << format_trace(packets);
  return kExitOk;
}

// dataplane restart: the dataplane accepted; say so, then (unless --no-wait) wait for a new
// instance in sync and say what it took over.
int finish_restart(ApiClient& client, const CliInvocation& inv, const json& answer,
                   std::ostream& out, std::ostream& err, std::chrono::milliseconds poll) {
  using Clock = std::chrono::steady_clock;
  const json& before = answer["before"];
  const std::string message = answer.value("message", "");
  if (inv.json) {
    out << answer.dump() << "\n";
  } else {
    out << "dataplane" << (before.is_object() ? " pid " + num(before["pid"]) : std::string())
        << " is restarting" << (message.empty() ? "" : ": " + message) << "\n";
  }
  out.flush();
  if (!inv.wait) return kExitOk;
  // No instance known (the controller had no hello): any instance in sync will do.
  const bool known = before.is_object();
  const uint64_t old_instance = known ? before["instance"].get<uint64_t>() : 0;
  const auto start = Clock::now();
  std::string seen = "the dataplane has not reconnected";
  for (;;) {
    auto a = client.call({{"cmd", "status"}});
    if (!a) {
      err << "rondoctl: dataplane restart: lost the control plane while waiting: " << client.error()
          << "\n";
      return kExitFailed;
    }
    if (!a->value("ok", false)) {
      print_failure(*a, inv, out, err);
      return kExitFailed;
    }
    const json& s = (*a)["status"];
    const json& dp = s["dataplane"];
    if (dp.is_object() && s["dataplane_connected"].get<bool>()) {
      const bool new_instance = !known || dp["instance"].get<uint64_t>() != old_instance;
      if (!new_instance) seen = "the same dataplane instance still answers";
      else if (!s["in_sync"].get<bool>()) seen = "the new dataplane is not in sync yet";
      if (new_instance && s["in_sync"].get<bool>()) {
        if (inv.json) out << json{{"ok", true}, {"dataplane", dp}}.dump() << "\n";
        else out << format_restarted(dp);
        if (dp.value("start_kind", "") == "fresh") {
          err << "rondoctl: dataplane restart: the new dataplane started fresh: it kept no flows "
                 "(see its log for why), so connections through this host were reset\n";
          return kExitFailed;
        }
        return kExitOk;
      }
    } else {
      seen = "the dataplane has not reconnected";
    }
    if (!pause(start, inv.timeout_s, poll)) {
      err << "rondoctl: dataplane restart: timeout after " << *inv.timeout_s << " s: " << seen
          << " (rondoctl status; journalctl -u rondo-dataplane)\n";
      return kExitFailed;
    }
  }
}

}  // namespace

std::string cli_usage() { return kUsage; }

std::string format_bytes(double b) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  size_t u = 0;
  while (b >= 1024 && u + 1 < std::size(units)) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%.0f B", b);
  else std::snprintf(buf, sizeof buf, "%.1f %s", b, units[u]);
  return buf;
}

std::variant<CliInvocation, CliExit> parse_cli(const std::vector<std::string>& args) {
  CliInvocation inv;
  try {
    // Options common to every command, accepted before and after the command words.
    po::options_description common("Options");
    common.add_options()("help,h", "help")("json", "json")(
        "socket", po::value<std::string>()->value_name("PATH"), "socket");
    // Read after each of the two parses below (before and after the command words).
    auto take_common = [&](const po::variables_map& vm) {
      if (vm.count("json")) inv.json = true;
      if (vm.count("socket")) inv.socket = vm["socket"].as<std::string>();
      if (inv.socket.empty()) usage_error("--socket: empty path");
    };
    const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;

    // Everything before the first word that is not an option (or --socket's value).
    size_t i = 0;
    while (i < args.size() && args[i].size() > 1 && args[i][0] == '-') {
      if (args[i] == "--socket" && i + 1 < args.size()) ++i;
      ++i;
    }
    {
      po::variables_map vm;
      po::store(po::command_line_parser(std::vector<std::string>(args.begin(), args.begin() + i))
                    .options(common)
                    .style(style)
                    .run(),
                vm);
      po::notify(vm);
      if (vm.count("help")) return CliExit{kExitOk, kUsage};
      take_common(vm);
    }
    if (i == args.size()) usage_error("missing command (rondoctl --help lists them)");

    std::string word = args[i++];
    if (word == "vip" || word == "backend" || word == "flow" || word == "dataplane") {
      if (i == args.size())
        usage_error(word + ": missing subcommand (" +
                    (word == "vip"         ? "add, remove, list, drain, undrain"
                     : word == "backend"   ? "add, remove, drain, undrain, weight"
                     : word == "dataplane" ? "restart"
                                           : "show, list, delete") +
                    ")");
      word += " " + args[i++];
    }
    inv.command = word;

    // The command's own options, then its positional arguments.
    std::string proto = "tcp", sched = "rr", weight = "1", timeout, proxy_protocol = "off";
    std::string mode = "fullnat", on_all_down = "drop";
    bool force = false;
    po::options_description own;
    own.add(common);
    const bool is_remove = word == "vip remove" || word == "backend remove";
    if (is_remove) own.add_options()("force", po::bool_switch(&force), "");
    if (word == "vip add")
      own.add_options()("proto", po::value(&proto), "")("scheduler", po::value(&sched), "")(
          "proxy-protocol", po::value(&proxy_protocol), "")("mode", po::value(&mode), "")(
          "on-all-down", po::value(&on_all_down), "");
    if (word == "backend add") own.add_options()("weight", po::value(&weight), "");
    if (word == "backend drain")
      own.add_options()("wait", po::bool_switch(&inv.wait), "")("timeout", po::value(&timeout), "");
    bool no_wait = false;
    if (word == "dataplane restart")
      own.add_options()("no-wait", po::bool_switch(&no_wait), "")("timeout", po::value(&timeout), "");
    // Inspection: filters, and what each command takes besides.
    std::string f_vip, f_client, f_backend, f_local, f_proto, limit, count, seconds, reason;
    bool backend_side = false;
    const bool is_flow = word == "flow show" || word == "flow list" || word == "flow delete";
    if (word == "flow list" || word == "flow delete" || word == "trace")
      own.add_options()("vip", po::value(&f_vip), "")("client", po::value(&f_client), "");
    if (word == "flow list" || word == "flow delete")
      own.add_options()("local", po::value(&f_local), "")("proto", po::value(&f_proto), "");
    if (word == "flow list" || word == "flow delete" || word == "trace")
      own.add_options()("backend", po::value(&f_backend), "");
    if (word == "flow list") own.add_options()("limit", po::value(&limit), "");
    if (word == "flow show" || word == "flow delete")
      own.add_options()("backend-side", po::bool_switch(&backend_side), "");
    if (word == "trace") own.add_options()("count", po::value(&count), "")("seconds", po::value(&seconds), "");
    if (word == "drops") own.add_options()("reason", po::value(&reason), "");
    own.add_options()("arg", po::value<std::vector<std::string>>(), "");
    po::positional_options_description pos;
    pos.add("arg", -1);

    std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
    for (const auto& a : rest) {
      // "-1" would read as an unknown short option; say what it is instead.
      if (a.size() > 1 && a[0] == '-' && std::isdigit(static_cast<unsigned char>(a[1])))
        usage_error(word + ": " + a + ": negative numbers are not valid here");
    }
    po::variables_map vm;
    po::store(po::command_line_parser(rest).options(own).positional(pos).style(style).run(), vm);
    po::notify(vm);
    if (vm.count("help")) return CliExit{kExitOk, kUsage};
    take_common(vm);

    try {
      if (word == "vip add") {
        auto a = positionals(vm, 2, 2, "NAME ADDRESS:PORT");
        const auto [ip, port] = checked_endpoint(a[1]);
        // Each named setting, checked here so that a typo is a usage error (exit 2).
        struct Named {
          const char* option;
          const std::string& value;
          bool known;
          const char* what;
          std::string names;
        };
        for (const Named& n : {
                 Named{"proto", proto, parse_proto(proto).has_value(), "a protocol", "tcp, udp"},
                 Named{"scheduler", sched, parse_sched(sched).has_value(), "a scheduler",
                       sched_choices()},
                 Named{"proxy-protocol", proxy_protocol,
                       parse_proxy_protocol(proxy_protocol).has_value(),
                       "a PROXY protocol setting", "off, v2"},
                 Named{"mode", mode, parse_mode(mode).has_value(), "a mode", mode_choices()},
                 Named{"on-all-down", on_all_down, parse_on_all_down(on_all_down).has_value(),
                       "an on-all-down setting", "drop, open"},
             })
          if (!n.known)
            usage_error("--" + std::string(n.option) + ": " + n.value + " is not " + n.what +
                        " (" + n.names + ")");
        inv.request = {{"cmd", "vip.add"}, {"name", checked_name(a[0], "vip name")},
                       {"address", api::format_addr(ip)}, {"port", port},
                       {"protocol", proto}, {"scheduler", sched}};
        // The rest only when not the default, as the config file would leave them out.
        if (proxy_protocol != "off") inv.request["proxy_protocol"] = proxy_protocol;
        if (mode != "fullnat") inv.request["mode"] = mode;
        if (on_all_down != "drop") inv.request["on_all_down"] = on_all_down;
      } else if (word == "vip remove") {
        auto a = positionals(vm, 1, 1, "NAME");
        inv.request = {{"cmd", "vip.remove"}, {"name", checked_name(a[0], "vip name")},
                       {"force", force}};
      } else if (word == "vip drain" || word == "vip undrain") {
        auto a = positionals(vm, 1, 1, "NAME");
        inv.request = {{"cmd", word == "vip drain" ? "vip.drain" : "vip.undrain"},
                       {"name", checked_name(a[0], "vip name")}};
      } else if (word == "vip list") {
        positionals(vm, 0, 0, "no arguments");
        inv.request = {{"cmd", "vip.list"}};
      } else if (word == "backend add") {
        auto a = positionals(vm, 2, 2, "VIP ADDRESS:PORT");
        inv.request = backend_request("backend.add", a[0], a[1]);
        inv.request["weight"] = parse_weight(weight);
      } else if (word == "backend remove") {
        auto a = positionals(vm, 2, 2, "VIP ADDRESS:PORT");
        inv.request = backend_request("backend.remove", a[0], a[1]);
        inv.request["force"] = force;
      } else if (word == "backend drain" || word == "backend undrain") {
        auto a = positionals(vm, 2, 2, "VIP ADDRESS:PORT");
        inv.request = backend_request(word == "backend drain" ? "backend.drain" : "backend.undrain",
                                      a[0], a[1]);
        if (!timeout.empty()) {
          if (!inv.wait) usage_error("--timeout only applies with --wait");
          inv.timeout_s = parse_seconds(timeout);
        }
      } else if (word == "backend weight") {
        auto a = positionals(vm, 3, 3, "VIP ADDRESS:PORT WEIGHT");
        inv.request = backend_request("backend.weight", a[0], a[1]);
        inv.request["weight"] = parse_weight(a[2]);
      } else if (word == "show") {
        auto a = positionals(vm, 0, 1, "[VIP]");
        inv.request = {{"cmd", "show"}};
        if (!a.empty()) inv.request["vip"] = checked_name(a[0], "vip name");
      } else if (is_flow) {
        inv.request = {{"cmd", word == "flow delete" ? "flow.delete" : "flow.list"}};
        auto a = positionals(vm, 0, 2, word == "flow show" ? "CLIENT:PORT VIP:PORT/PROTO" : "[A:P B:P/PROTO]");
        if (word == "flow show" && a.size() != 2)
          usage_error("expected CLIENT:PORT VIP:PORT/PROTO (or --backend-side BACKEND:PORT LOCAL:PORT/PROTO)");
        if (a.size() == 1) usage_error("expected two endpoints, the second with /PROTO");
        if (a.size() == 2) {
          // One whole flow key: either side's.
          const auto slash = a[1].rfind('/');
          if (slash == std::string::npos) usage_error(a[1] + ": expected ADDRESS:PORT/PROTO (e.g. 203.0.113.10:80/tcp)");
          const std::string proto_s = a[1].substr(slash + 1);
          if (!parse_proto(proto_s)) usage_error(proto_s + " is not a protocol (tcp, udp)");
          const auto [ip1, port1] = checked_endpoint(a[0]);
          const auto [ip2, port2] = checked_endpoint(a[1].substr(0, slash));
          inv.request[backend_side ? "backend" : "client"] = format_endpoint(ip1, port1);
          inv.request[backend_side ? "local" : "vip"] = format_endpoint(ip2, port2);
          inv.request["protocol"] = proto_s;
        } else if (backend_side) {
          usage_error("--backend-side goes with two endpoints");
        }
        auto put = [&](const char* key, const std::string& v) {
          if (v.empty()) return;
          if (inv.request.contains(key)) usage_error(std::string("--") + key + " and the endpoints name the same thing");
          inv.request[key] = v;
        };
        put("vip", f_vip);
        put("client", f_client);
        put("backend", f_backend);
        put("local", f_local);
        if (!f_proto.empty()) {
          if (!parse_proto(f_proto)) usage_error("--proto: " + f_proto + " is not a protocol (tcp, udp)");
          put("protocol", f_proto);
        }
        if (word == "flow delete" && inv.request.size() == 1)
          usage_error("name the flows to delete (endpoints, or a filter such as --backend ADDRESS:PORT)");
        if (!limit.empty()) inv.max_flows = parse_count(limit, "--limit", 1, 1'000'000);
        if (word == "flow list") inv.request["limit"] = std::min<uint64_t>(inv.max_flows, 1000);
      } else if (word == "trace") {
        positionals(vm, 0, 0, "no arguments");
        inv.request = {{"cmd", "trace.start"}};
        if (!f_vip.empty()) inv.request["vip"] = f_vip;
        if (!f_client.empty()) inv.request["client"] = f_client;
        if (!f_backend.empty()) inv.request["backend"] = f_backend;
        if (!count.empty()) inv.trace_count = static_cast<uint32_t>(parse_count(count, "--count", 1, 10000));
        if (!seconds.empty()) inv.trace_seconds = static_cast<uint32_t>(parse_count(seconds, "--seconds", 1, 3600));
        inv.request["count"] = inv.trace_count;
        inv.request["seconds"] = inv.trace_seconds;
      } else if (word == "drops") {
        positionals(vm, 0, 0, "no arguments");
        inv.request = {{"cmd", "drops"}};
        if (!reason.empty()) inv.request["reason"] = reason;
      } else if (word == "dataplane restart") {
        positionals(vm, 0, 0, "no arguments");
        inv.request = {{"cmd", "dataplane.restart"}};
        inv.wait = !no_wait;
        if (!timeout.empty()) {
          if (no_wait) usage_error("--timeout does not apply with --no-wait");
          inv.timeout_s = parse_seconds(timeout);
        } else {
          inv.timeout_s = 30;
        }
      } else if (word == "stats" || word == "status" || word == "reload") {
        positionals(vm, 0, 0, "no arguments");
        inv.request = {{"cmd", word}};
      } else {
        usage_error("unknown command \"" + word + "\" (rondoctl --help lists them)");
      }
    } catch (const Usage& u) {
      throw Usage{word + ": " + u.text};
    }
  } catch (const Usage& u) {
    return CliExit{kExitUsage, "rondoctl: " + u.text};
  } catch (const po::error& e) {
    return CliExit{kExitUsage, std::string("rondoctl: ") +
                                   (inv.command.empty() ? "" : inv.command + ": ") + e.what()};
  }
  return inv;
}

// ---------------------------------------------------------------------------------------
// Client

ApiClient::ApiClient(std::string path, std::chrono::milliseconds timeout)
    : path_(std::move(path)), timeout_(timeout) {}

ApiClient::~ApiClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool ApiClient::connect() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    error_ = "socket path too long: " + path_;
    return false;
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout_.count() % 1000) * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    error_ = path_ + ": " + std::strerror(e);
    if (e == EACCES) error_ += " (the socket's group decides who may use it)";
    if (e == ENOENT || e == ECONNREFUSED) error_ += " (is rondo-controlplane running?)";
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

std::optional<json> ApiClient::call(const json& request) {
  if (fd_ < 0) {
    error_ = "not connected";
    return std::nullopt;
  }
  const std::string line = request.dump() + "\n";
  for (size_t off = 0; off < line.size();) {
    const ssize_t w = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      error_ = std::string("send: ") + std::strerror(errno);
      return std::nullopt;
    }
    off += static_cast<size_t>(w);
  }
  for (;;) {
    if (auto nl = buf_.find('\n'); nl != std::string::npos) {
      std::string answer = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      try {
        return json::parse(answer);
      } catch (const json::exception& e) {
        error_ = std::string("unreadable answer: ") + e.what();
        return std::nullopt;
      }
    }
    char chunk[65536];
    const ssize_t r = ::recv(fd_, chunk, sizeof chunk, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      error_ = errno == EAGAIN || errno == EWOULDBLOCK
                   ? "no answer within " + std::to_string(timeout_.count() / 1000) + " s"
                   : std::string("recv: ") + std::strerror(errno);
      return std::nullopt;
    }
    if (r == 0) {
      error_ = "the control plane closed the connection";
      return std::nullopt;
    }
    buf_.append(chunk, static_cast<size_t>(r));
  }
}

// ---------------------------------------------------------------------------------------
// Output

// A backend's share of its VIP's Maglev table (maglev, sh), in percent with two decimals
// (one entry of 65537 is 0.0015%); "-" when its VIP has no table or it is unknown.
std::string table_share(const json& entries, const json& size) {
  if (!entries.is_number() || !size.is_number() || size.get<double>() <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", 100.0 * entries.get<double>() / size.get<double>());
  return buf;
}

// Health checks have every backend that could take a new connection (not drained, weight
// above 0) down: say what the VIP does with new connections (its on_all_down), or "".
std::string all_down_warning(const json& v) {
  size_t down = 0;
  for (const auto& b : v["backends"]) {
    if (b["drained"].get<bool>() || b["weight"].get<uint64_t>() == 0) continue;
    if (b["health"] != "down") return "";
    ++down;
  }
  if (down == 0) return "";
  const bool open = v.value("on_all_down", "drop") == "open";
  return "warning: " + v["name"].get<std::string>() + ": every backend is down (health checks): " +
         (open ? "new connections still go to them (on_all_down: open)\n"
               : "new connections are dropped (on_all_down: drop)\n");
}

// Without --dsr-check-interface, the backends of DSR VIPs with health checks are checked on
// their own address: a broken tunnel or VIP on lo goes unseen. One line naming them, or "".
std::string dsr_checks_note(const json& a) {
  if (a["status"].value("dsr_checks", "") != "own_address") return "";
  std::string names;
  for (const auto& v : a["vips"]) {
    if (v.value("mode", "fullnat") == "fullnat" || v.value("health_check", "none") == "none")
      continue;
    names += (names.empty() ? "" : ", ") + v["name"].get<std::string>();
  }
  if (names.empty()) return "";
  return "note: " + names +
         ": DSR backends are health-checked on their own address, not through their tunnel "
         "to the VIP (rondo-controlplane --dsr-check-interface; docs/modes.md)\n";
}

// "2026-12-06 12:45:29 UTC" in local time, for a unix time in seconds.
static std::string local_time(double unix_s) {
  const time_t t = static_cast<time_t>(unix_s);
  tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm);
  return buf;
}

static std::string flows_taken_over(const json& dp) {
  return num(dp["adopted_flows"]) + " flows adopted, " + num(dp["discarded_flows"]) +
         " discarded, gap " + num(dp["gap_ms"]) + " ms";
}

std::string format_dataplane_start(const json& s) {
  const json& dp = s.value("dataplane", json());
  if (!dp.is_object() || !dp.contains("start_kind")) return "";
  std::string out = "dataplane: pid " + num(dp["pid"]);
  if (dp["since"].is_number()) out += ", up since " + local_time(dp["since"].get<double>());
  const std::string kind = dp["start_kind"].get<std::string>();
  if (kind == "planned") out += ", after a planned restart: " + flows_taken_over(dp);
  else if (kind == "crash") out += ", after a crash: " + flows_taken_over(dp);
  // A fresh start that found flows it could not take says so; otherwise there is nothing.
  else if (dp["discarded_flows"].get<uint64_t>() > 0) out += ", started fresh: " + flows_taken_over(dp);
  else out += ", started fresh";
  return out + "\n";
}

std::string format_restarted(const json& dp) {
  const std::string kind = dp.value("start_kind", "fresh");
  return "dataplane restarted: pid " + num(dp["pid"]) + ", " +
         (kind == "planned" ? "planned restart" : kind == "crash" ? "after a crash" : "fresh start") +
         ", " + num(dp["adopted_flows"]) + " flows adopted (" + num(dp["discarded_flows"]) +
         " discarded), forwarding resumed after " + num(dp["gap_ms"]) + " ms\n";
}

// The interfaces of `show` and `stats` (one row each: port and device, VLAN, MTU,
// addresses, traffic), or "" when the answer has none.
std::string interfaces_table(const json& a) {
  const json rows = a.value("interfaces", json::array());
  if (rows.empty()) return "";
  Table t({"INTERFACE", "PORT", "VLAN", "MTU", "ADDRESSES", "RX_PACKETS", "RX_BYTES",
           "TX_PACKETS", "TX_BYTES"},
          {false, false, true, true, false, true, true, true, true});
  for (const auto& i : rows) {
    std::string port = num(i["port"]);
    if (i.value("device", json()).is_string()) port += " (" + i["device"].get<std::string>() + ")";
    std::string addresses;
    for (const auto& p : i.value("addresses", json::array()))
      addresses += (addresses.empty() ? "" : ",") + p.get<std::string>();
    const uint64_t vlan = i.value("vlan", 0);
    t.add({i["name"].get<std::string>(), port, vlan ? std::to_string(vlan) : "-", num(i["mtu"]),
           addresses.empty() ? "-" : addresses, num(i["rx_packets"]), bytes_cell(i["rx_bytes"]),
           num(i["tx_packets"]), bytes_cell(i["tx_bytes"])});
  }
  return t.str();
}

std::string format_show(const json& a) {
  std::string out = status_line(a["status"]) + format_dataplane_start(a["status"]);
  if (auto t = interfaces_table(a); !t.empty()) out += t + "\n";
  Table t({"VIP", "MODE", "SCHED", "BACKEND", "WEIGHT", "HEALTH", "STATE", "FLOWS", "CONN/S",
           "PACKETS", "BYTES", "TABLE%"},
          {false, false, false, false, true, false, false, true, true, true, true, true});
  for (const auto& v : a["vips"]) {
    const std::string vip = v["name"].get<std::string>() + " " + endpoint_of(v["address"], v["port"]) +
                            "/" + v["protocol"].get<std::string>();
    const std::string mode = v.value("mode", ""), sched = v.value("scheduler", "");
    if (v["backends"].empty())
      t.add({vip, mode, sched, "(no backends)", "", "", "", "", "", "", "", ""});
    for (const auto& b : v["backends"]) {
      std::string state = "active";
      if (b["drained"].get<bool>()) {
        const auto& f = b["active_flows"];
        state = f.is_null() ? "drained" : f.get<uint64_t>() > 0 ? "draining" : "drained";
      }
      t.add({vip, mode, sched, endpoint_of(b["address"], b["port"]),
             num(b["weight"]),
             b["health"].get<std::string>(), state, num(b["active_flows"]),
             rate(b["connections_per_s"]), num(b["packets"]), bytes_cell(b["bytes"]),
             table_share(b.value("table_entries", json()), b.value("table_size", json()))});
    }
  }
  if (a["vips"].empty()) return out + "no vips\n";
  // A backend short of local ports refuses new connections (no_local_port): say so before
  // it happens (docs/security.md, "Local ports").
  std::string warnings;
  for (const auto& v : a["vips"]) {
    warnings += all_down_warning(v);
    for (const auto& b : v["backends"]) {
      const auto& free = b.value("local_ports_free", json());
      const auto& all = b.value("local_ports", json());
      if (!free.is_number() || !all.is_number() || all.get<uint64_t>() == 0) continue;
      if (free.get<uint64_t>() * 10 >= all.get<uint64_t>()) continue;
      warnings += "warning: " + v["name"].get<std::string>() + " backend " +
                  endpoint_of(b["address"], b["port"]) + ": " +
                  num(free) + " of " + num(all) +
                  " local ports free (in use or quarantined); add local ips, widen the port "
                  "range or shorten port_quarantine\n";
    }
  }
  return out + t.str() + warnings + dsr_checks_note(a);
}

std::string format_vip_list(const json& a) {
  if (a["vips"].empty()) return "no vips\n";
  Table t({"NAME", "ADDRESS", "PROTO", "SCHED", "MODE", "BACKENDS", "HEALTH_CHECK", "ALL_DOWN",
           "ID"},
          {false, false, false, false, false, true, false, false, true});
  for (const auto& v : a["vips"])
    t.add({v["name"].get<std::string>(), endpoint_of(v["address"], v["port"]),
           v["protocol"].get<std::string>(), v["scheduler"].get<std::string>(),
           v["mode"].get<std::string>(), num(v["backends"]), v["health_check"].get<std::string>(),
           v.value("on_all_down", "drop"), num(v["id"])});
  return t.str();
}

std::string format_stats(const json& a) {
  std::string out = status_line(a["status"]);
  // One column per lcore counter, in the dataplane's order ("counters"), then BUSY%.
  std::vector<std::string> names;
  for (const auto& n : a.value("counters", json::array())) names.push_back(n.get<std::string>());
  std::vector<std::string> head = {"LCORE"};
  for (const auto& n : names) {
    std::string h = n;
    for (char& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    head.push_back(h);
  }
  head.push_back("BUSY%");
  std::vector<bool> right(head.size(), true);
  right[0] = false;
  Table lc(head, right);
  std::vector<std::string> lcore_ids;
  for (const auto& l : a["lcores"]) {
    std::vector<std::string> row = {num(l["lcore_id"])};
    for (const auto& n : names) {
      const json& v = l.contains(n) ? l[n] : json(0);
      row.push_back(n.ends_with("_bytes") ? format_bytes(v.get<double>()) : num(v));
    }
    const double busy = l.value("busy_cycles", 0.0), idle = l.value("idle_cycles", 0.0);
    char b[16] = "-";
    if (busy + idle > 0) std::snprintf(b, sizeof b, "%.1f", 100.0 * busy / (busy + idle));
    row.push_back(b);
    lc.add(row);
    lcore_ids.push_back("LCORE " + num(l["lcore_id"]));
  }
  out += "\n" + lc.str();

  head = {"DROP REASON", "TOTAL"};
  head.insert(head.end(), lcore_ids.begin(), lcore_ids.end());
  right.assign(head.size(), true);
  right[0] = false;
  Table dr(head, right);
  bool any = false;
  for (const auto& [reason, total] : a["drops"].items()) {
    if (total.get<uint64_t>() == 0) continue;
    any = true;
    std::vector<std::string> row = {reason, num(total)};
    for (const auto& l : a["lcores"])
      row.push_back(l["drops"].contains(reason) ? num(l["drops"][reason]) : "0");
    dr.add(row);
  }
  out += "\n" + (any ? dr.str() : std::string("drops: none\n"));

  Table be({"VIP", "BACKEND", "ID", "FLOWS", "CONNECTIONS", "PACKETS", "BYTES"},
           {false, false, true, true, true, true, true});
  for (const auto& b : a["backends"])
    be.add({b["vip"].is_null() ? "(removed)" : b["vip"].get<std::string>(),
            b["backend"].is_null() ? "-" : b["backend"].get<std::string>(), num(b["id"]),
            num(b["active_flows"]), num(b["connections"]), num(b["packets"]),
            format_bytes(b["bytes"].get<double>())});
  out += "\n" + (a["backends"].empty() ? std::string("backends: no traffic yet\n") : be.str());

  Table pt({"PORT", "NAME", "IPACKETS", "OPACKETS", "IBYTES", "OBYTES", "IMISSED", "IERRORS",
            "OERRORS", "RX_NOMBUF"},
           {false, false, true, true, true, true, true, true, true, true});
  for (const auto& p : a["ports"])
    pt.add({num(p["port_id"]), p["name"].get<std::string>(), num(p["ipackets"]),
            num(p["opackets"]), format_bytes(p["ibytes"].get<double>()),
            format_bytes(p["obytes"].get<double>()), num(p["imissed"]), num(p["ierrors"]),
            num(p["oerrors"]), num(p["rx_nombuf"])});
  out += "\n" + pt.str();
  if (auto t = interfaces_table(a); !t.empty()) out += "\n" + t;
  return out;
}

std::string format_status(const json& a) {
  const json& s = a["status"];
  std::ostringstream o;
  o << status_line(s) << format_dataplane_start(s);
  o << "config file:   " << (s["config"].get<std::string>().empty() ? "-" : s["config"].get<std::string>()) << "\n";
  o << "state file:    " << (s["state_file"].get<std::string>().empty() ? "-" : s["state_file"].get<std::string>()) << "\n";
  o << "vips:          " << num(s["vips"]) << ", backends: " << num(s["backends"]) << "\n";
  o << "last push:     " << age(s["last_push"]) << " (" << num(s["pushes"]) << " pushes, "
    << num(s["push_failures"]) << " failed)\n";
  o << "reloads:       " << num(s["reloads"]) << " (" << num(s["reload_failures"]) << " refused)\n";
  return o.str();
}

int run_cli(const CliInvocation& inv, std::ostream& out, std::ostream& err,
            std::chrono::milliseconds poll_interval) {
  ApiClient client(inv.socket);
  if (!client.connect()) {
    err << "rondoctl: cannot reach the control plane at " << client.error() << "\n";
    return kExitFailed;
  }
  auto answer = client.call(inv.request);
  if (!answer) {
    err << "rondoctl: " << inv.command << ": " << client.error() << "\n";
    return kExitFailed;
  }
  if (!answer->is_object() || !answer->value("ok", false)) {
    print_failure(*answer, inv, out, err);
    return exit_code_for(*answer);
  }
  try {
    const std::string& c = inv.command;
    if (c.rfind("flow ", 0) == 0) return finish_flows(client, inv, *answer, out, err);
    if (c == "trace") return finish_trace(client, inv, out, err, poll_interval);
    if (c == "dataplane restart") return finish_restart(client, inv, *answer, out, err, poll_interval);
    if (inv.json && !inv.wait) {
      out << answer->dump() << "\n";
      return kExitOk;
    }
    if (c == "drops") out << format_drops(*answer);
    else if (c == "show") out << format_show(*answer);
    else if (c == "vip list") out << format_vip_list(*answer);
    else if (c == "stats") out << format_stats(*answer);
    else if (c == "status") out << format_status(*answer);
    else if (inv.json) out << answer->dump() << "\n";
    else print_changes(*answer, out, err);
    if (inv.wait) return wait_drained(client, inv, out, err, poll_interval);
  } catch (const json::exception& e) {
    err << "rondoctl: " << inv.command << ": unexpected answer from the control plane: " << e.what()
        << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

namespace {

std::string num_or_dash(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_number_float()) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v.get<double>());
    return b;
  }
  return v.dump();
}

}  // namespace

std::string format_flows(const json& flows) {
  Table t({"PROTO", "CLIENT", "VIP", "BACKEND", "LOCAL", "STATE", "LCORE", "AGE_S", "EXPIRES_S",
           "PKTS_IN", "PKTS_OUT"},
          {false, false, false, false, false, false, true, true, true, true, true});
  for (const auto& f : flows)
    t.add({f["protocol"].get<std::string>(), f["client"].get<std::string>(), f["vip"].get<std::string>(),
           f["backend"].get<std::string>(), f["local"].get<std::string>(), f["state"].get<std::string>(),
           num_or_dash(f["lcore"]), num_or_dash(f["age_s"]), num_or_dash(f["expires_in_s"]),
           num_or_dash(f["packets_in"]), num_or_dash(f["packets_out"])});
  return t.str() + std::to_string(flows.size()) + (flows.size() == 1 ? " flow\n" : " flows\n");
}

std::string format_flow(const json& f) {
  std::ostringstream o;
  o << f["protocol"].get<std::string>() << " " << f["client"].get<std::string>() << " -> "
    << f["vip"].get<std::string>();
  if (f["vip_name"].is_string()) o << " (vip " << f["vip_name"].get<std::string>() << ")";
  o << "\n  lcore:    " << num_or_dash(f["lcore"]) << "\n  state:    " << f["state"].get<std::string>()
    << "\n  backend:  " << f["backend"].get<std::string>() << " (id " << num_or_dash(f["backend_id"]) << ")"
    << "\n  local:    " << f["local"].get<std::string>() << "\n  age:      " << num_or_dash(f["age_s"])
    << " s\n  expires:  in " << num_or_dash(f["expires_in_s"]) << " s unless traffic keeps it\n";
  if (f["metered"].get<bool>()) {
    o << "  to backend: " << num_or_dash(f["packets_in"]) << " packets, "
      << format_bytes(f["bytes_in"].get<double>()) << "\n  to client:  " << num_or_dash(f["packets_out"])
      << " packets, " << format_bytes(f["bytes_out"].get<double>()) << "\n";
  } else {
    o << "  traffic:  not kept (the dataplane runs with --flow-meters off)\n";
  }
  return o.str();
}

std::string format_trace(const json& packets) {
  std::ostringstream o;
  for (const auto& p : packets) {
    char at[32];
    std::snprintf(at, sizeof at, "%10.6f", p["at_us"].get<double>() / 1e6);
    o << at << " lcore " << p["lcore"].dump() << " port " << p["in_port"].dump()
      << (p["steered"].get<bool>() ? " (steered)" : "") << "  " << p["packet"].get<std::string>() << "\n";
    o << "           " << p["kind"].get<std::string>();
    if (p["flow"].is_string()) o << ", flow " << p["flow"].get<std::string>();
    if (p["backend"].is_string()) o << ", backend " << p["backend"].get<std::string>();
    if (p["state"].is_string()) o << ", " << p["state"].get<std::string>();
    o << " -> " << p["verdict"].get<std::string>();
    if (p["reason"].is_string()) o << " " << p["reason"].get<std::string>();
    if (p["out_port"].is_number())
      o << (p["verdict"] == "steer" ? " to worker " : " on port ") << p["out_port"].dump();
    o << "\n";
    if (p["out"].is_string()) o << "           out: " << p["out"].get<std::string>() << "\n";
  }
  o << packets.size() << (packets.size() == 1 ? " packet traced\n" : " packets traced\n");
  return o.str();
}

std::string format_drops(const json& answer) {
  std::ostringstream o;
  const auto& drops = answer["drops"];
  for (const auto& d : drops) {
    char ago[32];
    std::snprintf(ago, sizeof ago, "%.1f", d["ago_s"].get<double>());
    o << d["reason"].get<std::string>() << "  lcore " << d["lcore"].dump() << " port "
      << d["in_port"].dump() << ", " << ago << " s ago, " << d["len"].dump() << " bytes\n  "
      << d["packet"].get<std::string>() << "\n";
  }
  if (drops.empty()) o << "no dropped packets kept\n";
  return o.str();
}

}  // namespace rondo::cp
