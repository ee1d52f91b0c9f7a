// rondo-controlplane: own the desired state (state file, seeded from the config file),
// serve the local API (rondoctl), and keep the dataplane in sync with the state until
// SIGINT/SIGTERM; SIGHUP reloads the config file; under systemd it speaks sd_notify
// (service/systemd.h). The dataplane being absent or restarting is normal, never fatal;
// when this process stops, the dataplane keeps forwarding with the last state it was given.
#include <signal.h>

#include <boost/program_options.hpp>
#include <algorithm>
#include <filesystem>
#include <chrono>
#include <ctime>
#include <iostream>
#include <mutex>
#include <condition_variable>
#include <memory>
#include <string>
#include <thread>
#include <variant>

#include "controlplane/api/api_server.h"
#include "controlplane/bgp/announcer.h"
#include "controlplane/cli/cli.h"
#include "controlplane/config/config.h"
#include "controlplane/state/control_plane.h"
#include "controlplane/dataplane/dataplane_client.h"
#include "controlplane/health/dsr_checks.h"
#include "controlplane/health/dsr_tunnel.h"
#include "controlplane/health/health.h"
#include "controlplane/log.h"
#include "controlplane/metrics/metrics.h"
#include "controlplane/api/rpc.h"
#include "controlplane/service/systemd.h"

namespace po = boost::program_options;
using namespace rondo;

namespace {

constexpr const char* kDefaultDataplaneSocket = "/run/rondo/dataplane.sock";
constexpr const char* kDefaultStateFile = "/var/lib/rondo/state.json";

struct Options {
  std::string config;
  std::string state_file;
  std::string dataplane_socket;
  std::string api_socket;
  std::string api_group;
  std::string metrics_listen;
  bool check = false;
  int sync_interval_ms = 500;
  int apply_timeout_ms = 3000;
  // BGP through BIRD (bgp/announcer.h): off unless --bird-include is given.
  std::string bird_include;
  std::string birdc = "birdc";
  std::string bird_socket;
  int withdraw_wait_ms = 2000;
  int restart_hold_down_ms = 10000;
  // Health checks of DSR backends through their tunnel (health/dsr_checks.h): off unless
  // --dsr-check-interface is given.
  std::string dsr_check_interface;
  std::string dsr_check_mark_base = "0x52440000";
  std::string dsr_check_object;  // empty: find_hc_object()
};

constexpr const char* kHcObjectName = "rondo_hc_encap.bpf.o";

// Without --dsr-check-object: in the build tree (build/controlplane/../bpf/), else where
// meson installs it.
std::string find_hc_object() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path built = exe.parent_path().parent_path() / "bpf" / kHcObjectName;
    if (fs::exists(built, ec)) return built;
  }
  return (fs::path(RONDO_DATADIR) / kHcObjectName).string();
}

// Returns the exit code to stop with, or -1 to run.
int parse_options(int argc, char** argv, Options* o) {
  po::options_description desc("Usage: rondo-controlplane --config FILE [options]\nOptions");
  desc.add_options()
      ("help,h", "show this help")
      ("config,c", po::value(&o->config)->value_name("FILE"),
       "YAML config file: seeds the state on first start, re-read by reload (SIGHUP, rondoctl reload)")
      ("state-file", po::value(&o->state_file)->default_value(kDefaultStateFile)->value_name("PATH"),
       "where the desired state (with API changes and ids) is kept across restarts")
      ("dataplane-socket",
       po::value(&o->dataplane_socket)->default_value(kDefaultDataplaneSocket)->value_name("PATH"),
       "rondo-dataplane's control socket")
      ("api-socket", po::value(&o->api_socket)->default_value(cp::kDefaultApiSocket)->value_name("PATH"),
       "the API socket rondoctl talks to (mode 0660)")
      ("api-group", po::value(&o->api_group)->value_name("GROUP"),
       "group owning the API socket: its members may use rondoctl (default: the daemon's group)")
      ("metrics-listen",
       po::value(&o->metrics_listen)->default_value(cp::MetricsServer::kDefaultListen)->value_name("ADDR:PORT"),
       "serve Prometheus /metrics here (\"none\": off)")
      ("check", po::bool_switch(&o->check), "validate the config file, print a summary and exit")
      ("sync-interval-ms", po::value(&o->sync_interval_ms)->default_value(500)->value_name("MS"),
       "how often to check on the dataplane and poll its counters")
      ("apply-timeout-ms", po::value(&o->apply_timeout_ms)->default_value(3000)->value_name("MS"),
       "how long an API change waits for the dataplane's acknowledgement before answering")
      ("bird-include", po::value(&o->bird_include)->value_name("PATH"),
       "announce VIPs by BGP through BIRD: write their routes to this file (BIRD's config "
       "includes it) and run `birdc configure` when they change (docs/deploy.md, \"BGP\")")
      ("birdc", po::value(&o->birdc)->default_value(o->birdc)->value_name("PATH"), "the BIRD client")
      ("bird-socket", po::value(&o->bird_socket)->value_name("PATH"),
       "BIRD's control socket (default: birdc's)")
      ("bgp-withdraw-wait-ms", po::value(&o->withdraw_wait_ms)->default_value(2000)->value_name("MS"),
       "on shutdown, how long to wait after withdrawing the VIPs before exiting (for the "
       "routers to move traffic away while the dataplane still forwards)")
      ("restart-hold-down", po::value(&o->restart_hold_down_ms)->default_value(10000)->value_name("MS"),
       "when the dataplane goes away (restart, crash), keep announcing the VIPs for up to MS "
       "for it to come back in sync; then withdraw (0: withdraw at once)")
      ("dsr-check-interface", po::value(&o->dsr_check_interface)->value_name("IFACE"),
       "check backends of ipip, gue and l2dsr VIPs through their tunnel, at VIP:port: attach "
       "rondo_hc_encap.bpf.o to IFACE's tc egress, where a fwmark rule routes the checks "
       "(docs/modes.md, \"Health checks in the DSR modes\"); without it they are checked on "
       "their own address")
      ("dsr-check-mark-base", po::value(&o->dsr_check_mark_base)->default_value(o->dsr_check_mark_base)->value_name("MARK"),
       "the checks' socket marks are MARK .. MARK+0xffff, one per backend (low 16 bits clear)")
      ("dsr-check-object", po::value(&o->dsr_check_object)->value_name("PATH"),
       "the BPF object (default: rondo_hc_encap.bpf.o in the build tree, else " RONDO_DATADIR ")");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "rondo-controlplane: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  if (o->config.empty() && (o->check || o->state_file.empty())) {
    std::cerr << "rondo-controlplane: --config is required\n";
    return 2;
  }
  if (o->sync_interval_ms <= 0 || o->apply_timeout_ms < 0 || o->withdraw_wait_ms < 0 ||
      o->restart_hold_down_ms < 0) {
    std::cerr << "rondo-controlplane: --sync-interval-ms must be positive, --apply-timeout-ms, "
                 "--bgp-withdraw-wait-ms and --restart-hold-down not negative\n";
    return 2;
  }
  if (!o->dsr_check_mark_base.empty()) {
    std::string err;
    try {
      size_t used = 0;
      const unsigned long v = std::stoul(o->dsr_check_mark_base, &used, 0);
      if (used != o->dsr_check_mark_base.size() || v > 0xffffffffUL) throw std::out_of_range("");
      err = cp::validate_mark_base(static_cast<uint32_t>(v));
    } catch (const std::exception&) {
      err = "not a 32-bit number";
    }
    if (!err.empty()) {
      std::cerr << "rondo-controlplane: --dsr-check-mark-base " << o->dsr_check_mark_base << ": "
                << err << "\n";
      return 2;
    }
  }
  return -1;
}

int check_config(const std::string& path) {
  auto loaded = cp::load_config_model(path);
  if (auto* errors = std::get_if<std::vector<cp::ConfigError>>(&loaded)) {
    for (const auto& e : *errors) std::cerr << e.to_string() << "\n";
    return 1;
  }
  const auto& d = std::get<cp::DesiredState>(loaded);
  std::cout << "config OK: " << d.vips.size() << " vips, " << d.backend_count() << " backends\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (int rc = parse_options(argc, argv, &opt); rc >= 0) return rc;
  if (opt.check) return check_config(opt.config);

  // Signals are taken synchronously by the main thread (sigwait): no handler, no global
  // flag. Blocked before any thread starts, so every thread inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  cp::ControlPlaneOptions cpo;
  cpo.config_path = opt.config;
  cpo.state_path = opt.state_file;
  cpo.sync_interval = std::chrono::milliseconds(opt.sync_interval_ms);
  cpo.apply_timeout = std::chrono::milliseconds(opt.apply_timeout_ms);
  cpo.dsr_checks_tunnel = !opt.dsr_check_interface.empty();
  cpo.inspect_client = [path = opt.dataplane_socket] {
    return std::make_unique<cp::UnixDataplaneClient>(path);
  };
  cp::ControlPlane control(std::make_unique<cp::UnixDataplaneClient>(opt.dataplane_socket), cpo);
  if (auto started = control.start(); !started.ok) {
    for (const auto& e : started.errors) cp::log_error(e);
    cp::log_error("not started: nothing pushed to the dataplane");
    return 1;
  }

  // Health checks: each change of a backend's health goes into the desired state (and to
  // the dataplane as `down`); each change of the desired state retargets the checks.
  std::unique_ptr<cp::BpfTunnel> tunnel;
  const cp::BpfTunnel* tunnel_stats = nullptr;  // owned by dsr below
  const auto mark_base = static_cast<uint32_t>(std::stoul(opt.dsr_check_mark_base, nullptr, 0));
  if (!opt.dsr_check_interface.empty()) {
    const std::string object =
        opt.dsr_check_object.empty() ? find_hc_object() : opt.dsr_check_object;
    std::string err;
    tunnel = cp::BpfTunnel::attach(opt.dsr_check_interface, object, mark_base, &err);
    if (!tunnel) {
      cp::log_error("--dsr-check-interface " + err);
      return 1;
    }
    cp::log_info("health: DSR backends checked through their tunnel: " + object + " on " +
                 opt.dsr_check_interface + " egress, marks " + opt.dsr_check_mark_base + "+");
    tunnel_stats = tunnel.get();
  }
  cp::DsrChecks dsr(std::move(tunnel), mark_base);
  std::unique_ptr<cp::HealthChecker> health;
  try {
    health = std::make_unique<cp::HealthChecker>(
        // The checker logs each change itself.
        [&](uint32_t backend_id, bool up, const std::string&) {
          control.set_health(backend_id, up ? cp::Health::kUp : cp::Health::kDown);
        });
    health->set_targets(dsr.apply(control.view().desired));
    control.set_observer([&](const cp::DesiredState& d) { health->set_targets(dsr.apply(d)); });
    health->start();
  } catch (const std::exception& e) {
    cp::log_error(std::string("health checker: ") + e.what());
    return 1;
  }

  std::unique_ptr<cp::MetricsServer> metrics;
  if (opt.metrics_listen != "none" && !opt.metrics_listen.empty()) {
    try {
      metrics = std::make_unique<cp::MetricsServer>([&] { return control.view(); },
                                                    opt.metrics_listen);
      cp::log_info("metrics on http://" + opt.metrics_listen + "/metrics");
    } catch (const std::exception& e) {
      cp::log_error(e.what());
      return 1;
    }
  }

  cp::ApiServer api({.path = opt.api_socket, .group = opt.api_group},
                    [&](std::string_view line, const std::string& origin) {
                      return cp::handle_request(control, line, origin);
                    });
  if (auto err = api.start(); !err.empty()) {
    cp::log_error("api socket: " + err);
    return 1;
  }
  cp::log_info("api socket " + opt.api_socket + " (mode 0660" +
               (opt.api_group.empty() ? "" : ", group " + opt.api_group) + "); dataplane socket " +
               opt.dataplane_socket + "; state file " + opt.state_file);

  std::jthread controller([&](std::stop_token stop) { control.run(stop); });
  cp::SystemdNotifier systemd([&] { return control.loops(); },
                              std::chrono::milliseconds(opt.sync_interval_ms));
  systemd.ready("serving the API on " + opt.api_socket + "; dataplane socket " + opt.dataplane_socket);

  // BGP: the announced set follows the view (a sync interval behind at most).
  std::unique_ptr<cp::Announcer> announcer;
  std::jthread announcing;
  if (!opt.bird_include.empty()) {
    announcer = std::make_unique<cp::Announcer>(cp::AnnouncerOptions{
        .include_path = opt.bird_include, .birdc = opt.birdc, .bird_socket = opt.bird_socket});
    announcing = std::jthread([&](std::stop_token stop) {
      std::mutex m;
      std::condition_variable_any cv;
      cp::RestartHoldDown hold(std::chrono::milliseconds(opt.restart_hold_down_ms));
      while (!stop.stop_requested()) {
        announcer->apply(hold.filter(control.view(), cp::RestartHoldDown::Clock::now()));
        std::unique_lock lk(m);
        cv.wait_for(lk, stop, std::chrono::milliseconds(opt.sync_interval_ms), [] { return false; });
      }
    });
    cp::log_info("bgp: VIP routes in " + opt.bird_include + ", applied with " + opt.birdc +
                 " configure; held " + std::to_string(opt.restart_hold_down_ms) +
                 " ms when the dataplane goes away");
  }

  for (;;) {
    int sig = 0;
    if (systemd.watchdog()) {
      // Wait for a signal no longer than until the next watchdog check.
      const auto wait = std::max(systemd.next_tick() - cp::SystemdNotifier::Clock::now(),
                                 cp::SystemdNotifier::Clock::duration::zero());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
      const timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      sig = sigtimedwait(&sigs, nullptr, &ts);
      systemd.tick(cp::SystemdNotifier::Clock::now());
      if (sig < 0) continue;  // the timeout (EAGAIN) or EINTR
    } else if (sigwait(&sigs, &sig) != 0) {
      continue;
    }
    if (sig == SIGHUP) {
      systemd.reloading();
      control.reload("SIGHUP");
      systemd.reloaded("serving the API on " + opt.api_socket + "; dataplane socket " + opt.dataplane_socket);
      continue;
    }
    cp::log_info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                 ", exiting (the dataplane keeps forwarding with its last state)");
    break;
  }
  systemd.stopping();
  // Stop the sources of changes first, then the controller; nothing is sent to the
  // dataplane on the way out, so it keeps forwarding with the last state.
  api.stop();
  health->stop();
  if (tunnel_stats != nullptr) {
    // What the program did with the checks' packets, for the record (hc_encap.h).
    std::string line = "health: DSR check packets:";
    const auto counters = tunnel_stats->counters();
    for (size_t i = 0; i < counters.size(); ++i)
      line += std::string(" ") + kHcCounterNames[i] + " " + std::to_string(counters[i]);
    cp::log_info(line);
  }
  metrics.reset();
  // Withdraw before going: the routers move traffic away while the dataplane, still
  // running, forwards what is in flight.
  if (announcer) {
    announcing.request_stop();
    announcing.join();
    if (announcer->apply({}) && opt.withdraw_wait_ms > 0) {
      cp::log_info("bgp: withdrawn; waiting " + std::to_string(opt.withdraw_wait_ms) +
                   " ms for the routers");
      std::this_thread::sleep_for(std::chrono::milliseconds(opt.withdraw_wait_ms));
    }
  }
  controller.request_stop();
  controller.join();
  return 0;
}
