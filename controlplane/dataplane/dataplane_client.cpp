#include "controlplane/dataplane/dataplane_client.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rondo::cp {
namespace {

std::string errno_text(int e) { return std::strerror(e); }

const char* type_name(api::MsgType t) {
  switch (t) {
    case api::MsgType::kHello: return "hello";
    case api::MsgType::kHelloReply: return "hello reply";
    case api::MsgType::kSetState: return "set-state";
    case api::MsgType::kSetStateReply: return "set-state reply";
    case api::MsgType::kGetStats: return "get-stats";
    case api::MsgType::kStatsReply: return "stats reply";
    case api::MsgType::kError: return "error";
    case api::MsgType::kInspect: return "inspect";
    case api::MsgType::kInspectReply: return "inspect reply";
    case api::MsgType::kRestart: return "restart";
    case api::MsgType::kRestartReply: return "restart reply";
  }
  return "unknown";
}

}  // namespace

UnixDataplaneClient::UnixDataplaneClient(std::string socket_path, std::chrono::milliseconds timeout)
    : path_(std::move(socket_path)), timeout_(timeout) {}

UnixDataplaneClient::~UnixDataplaneClient() { close(); }

bool UnixDataplaneClient::connect() {
  close();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    error_ = "socket path too long: " + path_;
    return false;
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error_ = "socket: " + errno_text(errno);
    return false;
  }
  // Set before connect(): on AF_UNIX the send timeout also bounds a connect() that waits
  // for room in a busy listener's backlog.
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout_.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout_.count() % 1000) * 1000);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    error_ = "setsockopt: " + errno_text(errno);
    ::close(fd);
    return false;
  }
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    error_ = "connect " + path_ + ": " + errno_text(errno);
    ::close(fd);
    return false;
  }
  fd_ = fd;
  return true;
}

void UnixDataplaneClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void UnixDataplaneClient::broken(std::string why) {
  error_ = std::move(why);
  close();
}

bool UnixDataplaneClient::call(api::MsgType request, std::span<const uint8_t> body,
                               api::MsgType* type, std::vector<uint8_t>* reply) {
  if (fd_ < 0) {
    error_ = "not connected";
    return false;
  }
  const uint32_t seq = ++seq_;
  const std::string what = type_name(request);
  errno = 0;
  if (!api::send_msg(fd_, request, seq, body)) {
    const int e = errno;
    broken("send " + what + ": " +
           (e == EAGAIN || e == EWOULDBLOCK ? "timed out" : e ? errno_text(e) : "failed"));
    return false;
  }
  api::MsgHeader h{};
  std::string err;
  // recv_msg reports a timeout as a closed connection; errno tells them apart. Reset it
  // first because a plain EOF leaves it untouched.
  errno = 0;
  if (!api::recv_msg(fd_, &h, reply, &err)) {
    const int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK)
      err = "no reply within " + std::to_string(timeout_.count()) + " ms";
    broken(what + ": " + err);
    return false;
  }
  if (h.seq != seq) {
    broken(what + ": reply for request " + std::to_string(h.seq) + ", expected " +
           std::to_string(seq));
    return false;
  }
  *type = static_cast<api::MsgType>(h.type);
  return true;
}

std::optional<api::DataplaneInfo> UnixDataplaneClient::hello() {
  api::MsgType type;
  std::vector<uint8_t> reply;
  if (!call(api::MsgType::kHello, {}, &type, &reply)) return std::nullopt;
  std::string err;
  if (type == api::MsgType::kError) {
    auto ack = api::decode_ack(reply, &err);
    error_ = "hello refused: " + (ack ? ack->message : err);
    return std::nullopt;
  }
  if (type != api::MsgType::kHelloReply) {
    broken(std::string("hello: unexpected ") + type_name(type) + " reply");
    return std::nullopt;
  }
  auto info = api::decode_info(reply, &err);
  if (!info) broken("hello: " + err);
  return info;
}

api::Ack UnixDataplaneClient::push(const api::State& s) {
  const auto body = api::encode_state(s);
  api::MsgType type;
  std::vector<uint8_t> reply;
  if (!call(api::MsgType::kSetState, body, &type, &reply))
    return {.ok = false, .generation = s.generation, .message = error_};
  if (type != api::MsgType::kSetStateReply && type != api::MsgType::kError) {
    broken(std::string("set-state: unexpected ") + type_name(type) + " reply");
    return {.ok = false, .generation = s.generation, .message = error_};
  }
  std::string err;
  auto ack = api::decode_ack(reply, &err);
  if (!ack) {
    broken("set-state: " + err);
    return {.ok = false, .generation = s.generation, .message = error_};
  }
  // A kError body is an Ack with ok=false; trust the type over the flag.
  if (type == api::MsgType::kError) ack->ok = false;
  if (!ack->ok) error_ = "set-state refused: " + ack->message;
  return *ack;
}

std::optional<api::Stats> UnixDataplaneClient::stats() {
  api::MsgType type;
  std::vector<uint8_t> reply;
  if (!call(api::MsgType::kGetStats, {}, &type, &reply)) return std::nullopt;
  std::string err;
  if (type == api::MsgType::kError) {
    auto ack = api::decode_ack(reply, &err);
    error_ = "get-stats refused: " + (ack ? ack->message : err);
    return std::nullopt;
  }
  if (type != api::MsgType::kStatsReply) {
    broken(std::string("get-stats: unexpected ") + type_name(type) + " reply");
    return std::nullopt;
  }
  auto stats = api::decode_stats(reply, &err);
  if (!stats) broken("get-stats: " + err);
  return stats;
}

std::optional<api::InspectReply> UnixDataplaneClient::inspect(const api::InspectRequest& req) {
  const auto body = api::encode_inspect_request(req);
  api::MsgType type;
  std::vector<uint8_t> reply;
  if (!call(api::MsgType::kInspect, body, &type, &reply)) return std::nullopt;
  std::string err;
  if (type == api::MsgType::kError) {
    auto ack = api::decode_ack(reply, &err);
    error_ = ack ? ack->message : "inspect refused: " + err;
    return std::nullopt;
  }
  if (type != api::MsgType::kInspectReply) {
    broken(std::string("inspect: unexpected ") + type_name(type) + " reply");
    return std::nullopt;
  }
  auto out = api::decode_inspect_reply(reply, &err);
  if (!out) broken("inspect: " + err);
  return out;
}

api::Ack UnixDataplaneClient::restart() {
  api::MsgType type;
  std::vector<uint8_t> reply;
  if (!call(api::MsgType::kRestart, {}, &type, &reply)) return {.ok = false, .message = error_};
  if (type != api::MsgType::kRestartReply && type != api::MsgType::kError) {
    broken(std::string("restart: unexpected ") + type_name(type));
    return {.ok = false, .message = error_};
  }
  std::string err;
  auto ack = api::decode_ack(reply, &err);
  if (!ack) {
    broken("restart: " + err);
    return {.ok = false, .message = error_};
  }
  // A kError body is an Ack with ok=false; trust the type over the flag.
  if (type == api::MsgType::kError) ack->ok = false;
  if (!ack->ok) error_ = "restart refused: " + ack->message;
  return *ack;
}

}  // namespace rondo::cp
