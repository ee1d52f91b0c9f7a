// rondo-decap: the backend side of rondo's direct-server-return modes ipip and gue
// (docs/modes.md, "Backend setup"). It puts bpf/rondo_decap.bpf.o on an interface's tc
// ingress hook, so rondo's encapsulated packets reach the stack as the client's own, on hosts
// without (or not using) the ipip and fou modules.
//
// Exit status: 0 done; 1 failed, with what failed on one line (an attach that fails changes
// nothing); 2 bad arguments, nothing changed.
#include <bpf/libbpf.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/decap/decap.h"
#include "dataplane/api/ctl.h"

namespace {

namespace fs = std::filesystem;
using namespace rondo::decap;

constexpr const char* kObjectName = "rondo_decap.bpf.o";

// printf format: %u is the default GUE port.
constexpr const char* kHelp =
    "Usage: rondo-decap attach DEV [--gue-port N] [--object PATH]\n"
    "  or:  rondo-decap detach DEV\n"
    "  or:  rondo-decap stats DEV\n"
    "\n"
    "Decapsulate what rondo sends to a backend in its direct-server-return modes: IPIP\n"
    "(protocol 4, and 41 for IPv6 inside) and GUE over UDP (variant 0, and variant 1: IP right\n"
    "after UDP), with a tc BPF program on DEV's ingress. The client's packet then reaches\n"
    "the stack unchanged (its source the client, its destination the VIP, which the backend\n"
    "holds on lo), and the backend answers the client directly. The backend's setup, with\n"
    "and without rondo-decap: docs/modes.md (/usr/share/doc/rondo/ once packaged).\n"
    "\n"
    "Commands:\n"
    "  attach DEV        load the program and attach it to DEV's tc ingress (clsact qdisc,\n"
    "                    created if missing; filter priority 1, handle 0xdec); attaching\n"
    "                    again replaces it; DEV must be an Ethernet device\n"
    "  detach DEV        remove that filter (the clsact qdisc stays: other tc programs may\n"
    "                    use it); nothing attached is not an error\n"
    "  stats DEV         print the program's GUE port and counters (summed over the CPUs)\n"
    "\n"
    "Options of attach:\n"
    "  --gue-port N      UDP port GUE arrives on (default %u, the port rondo sends to)\n"
    "  --object PATH     the BPF object; default: rondo_decap.bpf.o beside this binary (a\n"
    "                    build tree), else " RONDO_DATADIR "\n"
    "  -h, --help        print this help\n"
    "\n"
    "Exit status: 0 done; 1 failed (an attach that fails changes nothing); 2 bad arguments\n"
    "(nothing changed).\n";

struct Args {
  std::string dev;
  int ifindex = 0;
  uint16_t gue_port = rondo::api::kGuePort;  // what rondo's dataplane sends to
  std::string object;  // empty: look for it (find_object)
};

struct Command {
  const char* name;
  bool takes_options;  // --gue-port and --object
  int (*run)(const Args&);
};

int attach_cmd(const Args& a);
int detach_cmd(const Args& a);
int stats_cmd(const Args& a);

constexpr Command kCommands[] = {
    {"attach", true, attach_cmd},
    {"detach", false, detach_cmd},
    {"stats", false, stats_cmd},
};

int fail(const std::string& what) {
  std::fprintf(stderr, "rondo-decap: %s\n", what.c_str());
  return 1;
}

std::optional<uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

bool is_ethernet(const std::string& dev) {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", dev.c_str());
  const bool ok = ioctl(s, SIOCGIFHWADDR, &ifr) == 0 && ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER;
  close(s);
  return ok;
}

// Parse COMMAND DEV [options]. nullptr with *err on a bad argument.
const Command* parse(const std::vector<std::string_view>& argv, Args* a, std::string* err) {
  if (argv.empty()) {
    *err = "no command (attach, detach or stats; --help)";
    return nullptr;
  }
  const Command* cmd = nullptr;
  for (const Command& c : kCommands)
    if (argv[0] == c.name) cmd = &c;
  if (cmd == nullptr) {
    *err = "unknown command '" + std::string(argv[0]) + "' (attach, detach or stats)";
    return nullptr;
  }
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string_view arg = argv[i];
    const bool option = arg.size() > 1 && arg[0] == '-';
    if (!option) {
      if (!a->dev.empty()) {
        *err = std::string(cmd->name) + ": one device only ('" + a->dev + "', then '" +
               std::string(arg) + "')";
        return nullptr;
      }
      a->dev = arg;
      continue;
    }
    if (!cmd->takes_options || (arg != "--gue-port" && arg != "--object")) {
      *err = std::string(cmd->name) + ": unknown option '" + std::string(arg) + "'";
      return nullptr;
    }
    if (i + 1 == argv.size()) {
      *err = std::string(arg) + " needs a value";
      return nullptr;
    }
    const std::string_view value = argv[++i];
    if (arg == "--object") {
      a->object = value;
      continue;
    }
    const auto port = parse_port(value);
    if (!port) {
      *err = "--gue-port: '" + std::string(value) + "' is not a port (1-65535)";
      return nullptr;
    }
    a->gue_port = *port;
  }
  if (a->dev.empty()) {
    *err = std::string(cmd->name) + ": which device? (rondo-decap " + cmd->name + " DEV)";
    return nullptr;
  }
  a->ifindex = static_cast<int>(if_nametoindex(a->dev.c_str()));
  if (a->ifindex == 0) {
    *err = "no such device '" + a->dev + "'";
    return nullptr;
  }
  if (cmd->takes_options && !is_ethernet(a->dev)) {
    *err = "'" + a->dev + "' is not an Ethernet device (the program expects a 14-byte MAC header)";
    return nullptr;
  }
  if (!a->object.empty() && access(a->object.c_str(), R_OK) != 0) {
    *err = "--object " + a->object + ": " + std::strerror(errno);
    return nullptr;
  }
  return cmd;
}

// Without --object: beside the binary (meson puts both in build/bpf/), else where meson
// installs it. Empty when neither exists.
std::string find_object() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path beside = exe.parent_path() / kObjectName;
    if (fs::exists(beside, ec)) return beside;
  }
  const fs::path installed = fs::path(RONDO_DATADIR) / kObjectName;
  return fs::exists(installed, ec) ? installed.string() : std::string();
}

int attach_cmd(const Args& a) {
  const std::string object = a.object.empty() ? find_object() : a.object;
  if (object.empty())
    return fail(std::string("no ") + kObjectName + " beside this binary or in " RONDO_DATADIR
                "; give --object PATH");
  std::string err;
  if (!attach(a.ifindex, object, a.gue_port, &err)) return fail(a.dev + ": " + err);
  std::printf("rondo-decap attached on %s (GUE port %u, %s)\n", a.dev.c_str(), a.gue_port,
              object.c_str());
  return 0;
}

int detach_cmd(const Args& a) {
  std::string err;
  bool removed = false;
  if (!detach(a.ifindex, &removed, &err)) return fail(a.dev + ": " + err);
  std::printf(removed ? "rondo-decap detached from %s\n" : "rondo-decap: nothing attached on %s\n",
              a.dev.c_str());
  return 0;
}

int stats_cmd(const Args& a) {
  Stats s;
  std::string err;
  if (!read_stats(a.ifindex, &s, &err)) return fail(a.dev + ": " + err);
  std::printf("rondo-decap on %s: program %u, GUE port %u\n", a.dev.c_str(), s.prog_id,
              s.gue_port);
  for (int i = 0; i < DECAP_COUNTERS; ++i)
    std::printf("%-20s %llu\n", kDecapCounterNames[i],
                static_cast<unsigned long long>(s.counters[i]));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (const std::string_view a : args) {
    if (a == "-h" || a == "--help") {
      std::printf(kHelp, static_cast<unsigned>(rondo::api::kGuePort));
      return 0;
    }
  }
  Args a;
  std::string err;
  const Command* cmd = parse(args, &a, &err);
  if (cmd == nullptr) {
    std::fprintf(stderr, "rondo-decap: %s\n", err.c_str());
    return 2;
  }
  // libbpf reports on stderr what rondo-decap handles and reports itself (a missing filter,
  // an existing qdisc); attach() lets it speak while the kernel verifies the program.
  libbpf_set_print(nullptr);
  return cmd->run(a);
}
