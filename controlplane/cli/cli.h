// rondoctl: command-line parsing, the API client, and the printing of answers. Split from
// rondoctl.cpp so that argument checking and output are unit-tested.
//
// Exit codes:
//   0  done
//   1  the operation failed or was refused (unknown vip/backend, already exists, needs
//      --force, bad config file on reload, drain timeout, control plane unreachable, the
//      dataplane refused to restart or did not come back in time, or came back without
//      its flows)
//   2  usage error: bad command, option or argument (bad address, port out of range, ...);
//      nothing was sent to the control plane
#pragma once

#include <chrono>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace rondo::cp {

inline constexpr const char* kDefaultApiSocket = "/run/rondo/controlplane.sock";

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

/// A command line understood and checked: what to send, and how to present the answer.
struct CliInvocation {
  std::string socket = kDefaultApiSocket;
  bool json = false;
  std::string command;      // "vip add", "backend drain", "show", ...
  nlohmann::json request;   // the API request
  // backend drain --wait; dataplane restart waits unless --no-wait
  bool wait = false;
  std::optional<double> timeout_s;  // nullopt: wait as long as it takes
  // flow list: flows to print at most (pages of up to 1000 are fetched until then)
  uint64_t max_flows = 100;
  // trace: packets and seconds asked for (the dataplane's trace is read until either)
  uint32_t trace_count = 10;
  uint32_t trace_seconds = 10;
};

/// Parsing ended without a command to run: help (code 0, text for stdout) or a usage
/// error (code 2, one line for stderr).
struct CliExit {
  int code = kExitUsage;
  std::string text;
};

/// Parse rondoctl's arguments (without the program name).
std::variant<CliInvocation, CliExit> parse_cli(const std::vector<std::string>& args);

/// The full usage text.
std::string cli_usage();

/// One request/answer exchange with the control plane over its unix socket.
class ApiClient {
 public:
  explicit ApiClient(std::string path, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  /// Connect; false with error() set if the control plane cannot be reached.
  bool connect();
  /// Send one request, read one answer; nullopt with error() set on transport failure.
  std::optional<nlohmann::json> call(const nlohmann::json& request);
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  std::string buf_;
  std::string error_;
};

/// Run a parsed command against the control plane; prints to `out` / `err`, returns the
/// exit code. `poll_interval` paces `drain --wait`.
int run_cli(const CliInvocation& inv, std::ostream& out, std::ostream& err,
            std::chrono::milliseconds poll_interval = std::chrono::milliseconds(200));

/// Text renderings of API answers (what rondoctl prints without --json).
std::string format_show(const nlohmann::json& answer);
std::string format_vip_list(const nlohmann::json& answer);
std::string format_stats(const nlohmann::json& answer);
std::string format_status(const nlohmann::json& answer);
/// "dataplane: pid P, up since ..., after a planned restart: N flows adopted, ..." for a
/// status object's dataplane, or "" when there is none.
std::string format_dataplane_start(const nlohmann::json& status);
/// "dataplane restarted: pid P, planned restart, N flows adopted (K discarded), forwarding
/// resumed after G ms" for the new instance's dataplane object.
std::string format_restarted(const nlohmann::json& dataplane);
/// flow list / flow show / trace / drops answers.
std::string format_flows(const nlohmann::json& flows);
std::string format_flow(const nlohmann::json& flow);
std::string format_trace(const nlohmann::json& packets);
std::string format_drops(const nlohmann::json& answer);
/// "12.3 MiB"-style byte counts.
std::string format_bytes(double bytes);

}  // namespace rondo::cp
