// rondo-controlplane: load the config, then keep the dataplane in sync with it until
// SIGINT/SIGTERM. The dataplane being absent or restarting is normal, never fatal.
#include <signal.h>

#include <boost/program_options.hpp>
#include <iostream>
#include <memory>
#include <string>
#include <variant>

#include "controlplane/config.h"
#include "controlplane/controller.h"
#include "controlplane/dataplane_client.h"
#include "controlplane/log.h"

namespace po = boost::program_options;
using namespace rondo;

namespace {

constexpr const char* kDefaultSocket = "/run/rondo/dataplane.sock";

struct Options {
  std::string config;
  std::string socket;
  bool check = false;
  int sync_interval_ms = 500;
};

// Returns the exit code to stop with, or -1 to run.
int parse_options(int argc, char** argv, Options* o) {
  po::options_description desc("Usage: rondo-controlplane --config FILE [options]\nOptions");
  desc.add_options()
      ("help,h", "show this help")
      ("config,c", po::value(&o->config)->value_name("FILE"), "YAML config file (required)")
      ("dataplane-socket", po::value(&o->socket)->default_value(kDefaultSocket)->value_name("PATH"),
       "rondo-dataplane's control socket")
      ("check", po::bool_switch(&o->check), "validate the config, print a summary and exit")
      ("sync-interval-ms", po::value(&o->sync_interval_ms)->default_value(500)->value_name("MS"),
       "how often to check on the dataplane");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "rondo-controlplane: " << e.what() << "\n" << desc;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  if (o->config.empty()) {
    std::cerr << "rondo-controlplane: --config is required\n" << desc;
    return 2;
  }
  if (o->sync_interval_ms <= 0) {
    std::cerr << "rondo-controlplane: --sync-interval-ms must be positive\n";
    return 2;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (int rc = parse_options(argc, argv, &opt); rc >= 0) return rc;

  auto loaded = cp::load_config(opt.config);
  if (auto* errors = std::get_if<std::vector<cp::ConfigError>>(&loaded)) {
    for (const auto& e : *errors) {
      if (opt.check) std::cerr << e.to_string() << "\n";
      else cp::log_error(e.to_string());
    }
    if (!opt.check) cp::log_error("invalid config, nothing pushed to the dataplane");
    return 1;
  }
  auto& state = std::get<api::State>(loaded);
  const std::string summary = std::to_string(state.vips.size()) + " vips, " +
                              std::to_string(cp::count_backends(state)) + " backends";
  if (opt.check) {
    std::cout << "config OK: " << summary << "\n";
    return 0;
  }

  // Signals are taken synchronously in the sleep between ticks: no handler, no global
  // flag, and a signal arriving mid-tick simply ends the next sleep at once.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  cp::log_info("loaded " + opt.config + ": " + summary + "; dataplane socket " + opt.socket);
  cp::Controller controller(std::make_unique<cp::UnixDataplaneClient>(opt.socket),
                            std::move(state));
  const timespec interval{opt.sync_interval_ms / 1000, (opt.sync_interval_ms % 1000) * 1'000'000L};
  for (;;) {
    controller.tick();
    int sig = sigtimedwait(&stop, nullptr, &interval);
    if (sig == SIGINT || sig == SIGTERM) {
      cp::log_info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                   ", exiting (the dataplane keeps forwarding)");
      return 0;
    }
  }
}
