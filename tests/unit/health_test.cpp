// Health checks: the rise/fall state machine, then HealthChecker against real loopback
// servers made here (127.0.0.1, ephemeral ports). Waits poll for a condition with a
// deadline; nothing sleeps for a fixed time to "let things happen".
#include "controlplane/health/health.h"
#include "controlplane/health/http_status.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rondo::cp {
namespace {

using namespace std::chrono_literals;
using Kind = HealthCheckSpec::Kind;

constexpr uint32_t kLoopbackHost = 0x7f000001;
constexpr api::Addr kLoopback = api::Addr::from_v4(kLoopbackHost);
const api::Addr kLoopback6 = *api::parse_addr("::1");

// ---- state machine ----------------------------------------------------------------------

// Feed a sequence ('+' ok, '-' failure) and return the status after each result as a string
// of 'U' (up), 'D' (down), '?' (unknown), so that whole runs read at a glance.
std::string run(HealthState& s, std::string_view results) {
  std::string out;
  for (char c : results) {
    s.report(c == '+');
    out.push_back(s.status() == Health::kUp ? 'U' : s.status() == Health::kDown ? 'D' : '?');
  }
  return out;
}

TEST(HealthState, StartsUnknownAndTakesTraffic) {
  HealthState s(2, 3);
  EXPECT_EQ(s.status(), Health::kUnknown);
  EXPECT_TRUE(s.takes_traffic());
  EXPECT_EQ(s.consecutive_ok(), 0u);
  EXPECT_EQ(s.consecutive_fail(), 0u);
}

TEST(HealthState, FirstResultDecidesFromUnknown) {
  {
    HealthState s(5, 5);
    EXPECT_TRUE(s.report(true));
    EXPECT_EQ(s.status(), Health::kUp);
  }
  {
    HealthState s(5, 5);
    EXPECT_TRUE(s.report(false));
    EXPECT_EQ(s.status(), Health::kDown);
    EXPECT_FALSE(s.takes_traffic());
  }
}

TEST(HealthState, FallConsecutiveFailuresTakeItDown) {
  HealthState s(2, 3);
  EXPECT_EQ(run(s, "+--"), "UUU");
  EXPECT_EQ(s.consecutive_fail(), 2u);
  EXPECT_TRUE(s.report(false));  // third in a row
  EXPECT_EQ(s.status(), Health::kDown);
  EXPECT_EQ(s.consecutive_fail(), 3u);
  EXPECT_EQ(s.consecutive_ok(), 0u);
  EXPECT_FALSE(s.report(false));  // stays down, no new change
  EXPECT_EQ(s.consecutive_fail(), 4u);
}

TEST(HealthState, RiseConsecutiveSuccessesBringItUp) {
  HealthState s(3, 1);
  EXPECT_EQ(run(s, "-++"), "DDD");
  EXPECT_TRUE(s.report(true));
  EXPECT_EQ(s.status(), Health::kUp);
  EXPECT_EQ(s.consecutive_ok(), 3u);
  EXPECT_FALSE(s.report(true));
}

TEST(HealthState, ReportReturnsTrueExactlyOnChanges) {
  HealthState s(2, 2);
  const std::string seq = "+--++-+--+-++";
  std::string changed;
  Health before = s.status();
  for (char c : seq) {
    const bool ch = s.report(c == '+');
    EXPECT_EQ(ch, s.status() != before) << "at result " << changed.size();
    before = s.status();
    changed.push_back(ch ? '!' : '.');
  }
  //                    + - - + + - + - - + - + +
  EXPECT_EQ(changed, "!.!.!...!...!");
}

TEST(HealthState, FlappingKeepsState) {
  // Alternating results never reach rise=2 or fall=2 in a row: the state holds.
  HealthState up(2, 2);
  EXPECT_EQ(run(up, "+-+-+-+-+-"), "UUUUUUUUUU");
  HealthState down(2, 2);
  EXPECT_EQ(run(down, "-+-+-+-+-+"), "DDDDDDDDDD");
  // One success in the middle of failures restarts the fall count.
  HealthState s(2, 3);
  EXPECT_EQ(run(s, "+--+--+---"), "UUUUUUUUUD");
}

TEST(HealthState, RiseOneFallOneFollowsEveryResult) {
  HealthState s(1, 1);
  EXPECT_EQ(run(s, "+-+--++-"), "UDUDDUUD");
}

TEST(HealthState, ZeroThresholdsAreOne) {
  HealthState s(0, 0);
  EXPECT_EQ(s.rise(), 1u);
  EXPECT_EQ(s.fall(), 1u);
  EXPECT_EQ(run(s, "+-+"), "UDU");
}

// Every sequence of up to 10 results, for a few (rise, fall): compare with a direct
// reading of the rule ("the last `fall` results failed while up" etc.).
TEST(HealthState, ExhaustiveAgainstReferenceModel) {
  for (uint32_t rise = 1; rise <= 4; ++rise) {
    for (uint32_t fall = 1; fall <= 4; ++fall) {
      for (int len = 1; len <= 10; ++len) {
        for (uint32_t bits = 0; bits < (1u << len); ++bits) {
          HealthState s(rise, fall);
          Health model = Health::kUnknown;
          uint32_t ok = 0, fail = 0;
          for (int i = 0; i < len; ++i) {
            const bool r = bits >> i & 1;
            ok = r ? ok + 1 : 0;
            fail = r ? 0 : fail + 1;
            const Health before = model;
            if (model == Health::kUnknown)
              model = r ? Health::kUp : Health::kDown;
            else if (model == Health::kUp && fail >= fall)
              model = Health::kDown;
            else if (model == Health::kDown && ok >= rise)
              model = Health::kUp;
            ASSERT_EQ(s.report(r), model != before)
                << "rise " << rise << " fall " << fall << " bits " << bits << " step " << i;
            ASSERT_EQ(s.status(), model);
            ASSERT_EQ(s.consecutive_ok(), ok);
            ASSERT_EQ(s.consecutive_fail(), fail);
          }
        }
      }
    }
  }
}

TEST(HealthState, NewThresholdsApplyToTheCurrentRun) {
  HealthState s(2, 5);
  EXPECT_EQ(run(s, "+---"), "UUUU");
  s.set_thresholds(2, 3);  // three failures already counted
  EXPECT_EQ(s.status(), Health::kUp);
  EXPECT_TRUE(s.report(false));
  EXPECT_EQ(s.status(), Health::kDown);
}

TEST(HealthCheckSpec, Validate) {
  HealthCheckSpec ok{.kind = Kind::kHttp, .http_path = "/healthz?full=1"};
  EXPECT_EQ(validate_health_check(ok), "");
  auto bad = [&](auto mutate) {
    HealthCheckSpec s = ok;
    mutate(s);
    return validate_health_check(s);
  };
  EXPECT_NE(bad([](auto& s) { s.interval_ms = 0; }), "");
  EXPECT_NE(bad([](auto& s) { s.timeout_ms = 0; }), "");
  EXPECT_NE(bad([](auto& s) { s.rise = 0; }), "");
  EXPECT_NE(bad([](auto& s) { s.fall = 0; }), "");
  EXPECT_NE(bad([](auto& s) { s.http_status = 99; }), "");
  EXPECT_NE(bad([](auto& s) { s.http_status = 600; }), "");
  EXPECT_NE(bad([](auto& s) { s.http_path = "healthz"; }), "");
  EXPECT_NE(bad([](auto& s) { s.http_path = "/a b"; }), "");
  EXPECT_NE(bad([](auto& s) { s.http_path = "/a\r\nX: y"; }), "");
  // A TCP check ignores the HTTP fields.
  EXPECT_EQ(bad([](auto& s) {
              s.kind = Kind::kTcp;
              s.http_path = "";
            }),
            "");
}

// ---- the status line of an HTTP check's answer -----------------------------------------

TEST(HttpStatusLine, ParsesVersionAndThreeDigits) {
  const struct {
    std::string_view line;
    int status;
  } cases[] = {
      {"HTTP/1.1 200 OK", 200},
      {"HTTP/1.1 200 OK\r", 200},
      {"HTTP/1.0 503", 503},
      {"HTTP/1.0 503\r", 503},
      {"HTTP/9.9 999 anything at all", 999},
      {"HTTP/1.1 200OK", -1},      // the reason is after a space
      {"HTTP/1.1 20", -1},         // too short
      {"HTTP/1.1 2x0 OK", -1},     // not three digits
      {"HTTP/11 200 OK", -1},      // version is DIGIT "." DIGIT
      {"HTTP/2 200", -1},
      {"http/1.1 200 OK", -1},     // case-sensitive (RFC 9112 section 2.3)
      {"HTTP/1.1  200 OK", -1},    // one space
      {"", -1},
  };
  for (const auto& c : cases) EXPECT_EQ(parse_status_line(c.line), c.status) << c.line;
}

TEST(HealthTargets, FromDesiredState) {
  DesiredState d;
  VipSpec web{.name = "web", .id = 0, .ip = api::Addr::from_v4(0xcb00710a), .port = 80};
  web.health_check = {.type = HealthCheck::Type::kHttp,
                      .path = "/ready",
                      .interval_ms = 500,
                      .timeout_ms = 200,
                      .rise = 3,
                      .fall = 4};
  web.backends = {{.id = 5, .ip = api::Addr::from_v4(0xc6336403), .port = 3000},
                  {.id = 6, .ip = api::Addr::from_v4(0xc6336404), .port = 3001}};
  VipSpec dns{.name = "dns", .id = 1, .ip = api::Addr::from_v4(0xcb007135), .port = 53};  // no checks
  dns.backends = {{.id = 7, .ip = api::Addr::from_v4(0xc6336405), .port = 53}};
  VipSpec db{.name = "db", .id = 2, .ip = api::Addr::from_v4(0xcb007136), .port = 5432};
  db.health_check = {.type = HealthCheck::Type::kTcp, .port = 9000};  // a separate check port
  db.backends = {{.id = 8, .ip = api::Addr::from_v4(0xc6336406), .port = 5432}};
  // An IPv6 backend is checked like the others, on its own address.
  VipSpec web6{.name = "web6", .id = 3, .ip = *api::parse_addr("2001:db8::10"), .port = 80};
  web6.health_check = {.type = HealthCheck::Type::kTcp};
  web6.backends = {{.id = 30, .ip = *api::parse_addr("2001:db8:100::3"), .port = 3000}};
  d.vips = {web, dns, db, web6};

  const auto t = health_targets(d);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[3].backend_id, 30u);
  EXPECT_EQ(t[3].ip, *api::parse_addr("2001:db8:100::3"));
  EXPECT_EQ(t[3].port, 3000);
  EXPECT_EQ(t[0], (HealthChecker::Target{5,
                                         api::Addr::from_v4(0xc6336403),
                                         3000,
                                         {.kind = Kind::kHttp,
                                          .http_path = "/ready",
                                          .http_status = 200,
                                          .interval_ms = 500,
                                          .timeout_ms = 200,
                                          .rise = 3,
                                          .fall = 4}}));
  EXPECT_EQ(t[1].backend_id, 6u);
  EXPECT_EQ(t[1].port, 3001);
  EXPECT_EQ(t[2].backend_id, 8u);
  EXPECT_EQ(t[2].port, 9000);
  EXPECT_EQ(t[2].spec.kind, Kind::kTcp);
}

// ---- loopback servers -------------------------------------------------------------------

// A listening socket on 127.0.0.1 (or ::1) with an ephemeral port.
class Listener {
 public:
  explicit Listener(bool v6 = false) {
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    if (v6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_loopback;
      EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
      socklen_t len = sizeof a;
      EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
      port_ = ntohs(a.sin6_port);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(kLoopbackHost);
      EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
      socklen_t len = sizeof a;
      EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
      port_ = ntohs(a.sin_port);
    }
    // A deep backlog: TCP checks connect without ever being accepted.
    EXPECT_EQ(::listen(fd_, SOMAXCONN), 0);
  }
  ~Listener() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A port on which nothing listens. It is taken below the ephemeral range, because a
// connect to 127.0.0.1:P from the ephemeral source port P would "succeed" (TCP
// self-connect) and turn a down backend up. (Another process could bind it meanwhile; on a
// test machine that is unlikely enough.)
uint16_t closed_port() {
  unsigned low = 32768, high = 60999;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(f, "%u %u", &low, &high) != 2) low = 32768;
    std::fclose(f);
  }
  const unsigned first = 10000 + static_cast<unsigned>(::getpid()) % 5000;
  for (unsigned p = first; p < low && p < 65536; ++p) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(kLoopbackHost);
    a.sin_port = htons(static_cast<uint16_t>(p));
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (free) return static_cast<uint16_t>(p);
  }
  ADD_FAILURE() << "no free port below the ephemeral range " << low;
  return 1;
}

// A tiny HTTP server thread: for each connection, read the request head and answer with
// `reply(request)`; an empty reply means "accept, read, and never answer" (the connection
// is held open until the server stops).
class HttpServer {
 public:
  explicit HttpServer(std::function<std::string(const std::string&)> reply, bool v6 = false)
      : listener_(v6), reply_(std::move(reply)), thread_([this] { serve(); }) {}
  ~HttpServer() {
    stop_ = true;
    thread_.join();
    for (int fd : held_) ::close(fd);
  }
  uint16_t port() const { return listener_.port(); }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_request_;
  }
  int requests() const { return requests_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listener_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;  // check stop_ every 20 ms
      const int c = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string req;
      char buf[1024];
      while (req.find("\r\n\r\n") == std::string::npos) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 1000) <= 0) break;
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        last_request_ = req;
      }
      ++requests_;
      const std::string answer = reply_(req);
      if (answer.empty()) {
        held_.push_back(c);
        continue;
      }
      [[maybe_unused]] ssize_t n = ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  Listener listener_;
  std::function<std::string(const std::string&)> reply_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::string last_request_;
  std::vector<int> held_;
  std::thread thread_;  // last: starts after everything above is built
};

std::string http_reply(int status) {
  return "HTTP/1.1 " + std::to_string(status) + " Whatever\r\nContent-Length: 2\r\n\r\nok";
}

// Records the callbacks.
struct Events {
  struct Event {
    uint32_t id;
    bool up;
    std::string reason;
  };
  std::mutex mu;
  std::vector<Event> list;

  HealthChecker::Callback callback() {
    return [this](uint32_t id, bool up, const std::string& reason) {
      std::lock_guard lock(mu);
      list.push_back({id, up, reason});
    };
  }
  std::vector<Event> get() {
    std::lock_guard lock(mu);
    return list;
  }
};

HealthCheckSpec fast(Kind kind) {
  return {.kind = kind, .interval_ms = 50, .timeout_ms = 200, .rise = 2, .fall = 2};
}

// Poll `cond` until it holds or `limit` passes.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

HealthChecker::TargetHealth health_of(const HealthChecker& c, uint32_t id) {
  for (const auto& t : c.snapshot())
    if (t.backend_id == id) return t;
  ADD_FAILURE() << "no target " << id;
  return {};
}

Health status_of(const HealthChecker& c, uint32_t id) { return health_of(c, id).status; }

// ---- checker ----------------------------------------------------------------------------

TEST(HealthChecker, TcpListeningIsUpClosedIsDown) {
  Listener open;  // the kernel completes handshakes from the backlog: no accept needed
  const uint16_t closed = closed_port();
  Events ev;
  HealthChecker c(ev.callback());
  c.set_targets(
      {{1, kLoopback, open.port(), fast(Kind::kTcp)}, {2, kLoopback, closed, fast(Kind::kTcp)}});
  auto snap = c.snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].status, Health::kUnknown);
  EXPECT_EQ(snap[1].status, Health::kUnknown);

  c.start();
  ASSERT_TRUE(eventually([&] { return status_of(c, 1) == Health::kUp; }));
  ASSERT_TRUE(eventually([&] { return status_of(c, 2) == Health::kDown; }));
  EXPECT_NE(health_of(c, 2).last_error.find("refused"), std::string::npos)
      << health_of(c, 2).last_error;
  EXPECT_EQ(health_of(c, 1).last_error, "");
  // Checks keep running at the interval.
  ASSERT_TRUE(eventually([&] { return health_of(c, 1).consecutive_ok >= 3; }));
  c.stop();

  auto events = ev.get();
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    if (e.id == 1) {
      EXPECT_TRUE(e.up);
      EXPECT_EQ(e.reason, "connect ok");
    } else {
      EXPECT_EQ(e.id, 2u);
      EXPECT_FALSE(e.up);
    }
  }
  const auto statuses = c.statuses();
  EXPECT_EQ(statuses.at(1), Health::kUp);
  EXPECT_EQ(statuses.at(2), Health::kDown);
}

TEST(HealthChecker, TcpGoesDownAfterFallAndBackAfterRise) {
  auto listener = std::make_unique<Listener>();
  const uint16_t port = listener->port();
  Events ev;
  HealthChecker c(ev.callback());
  HealthCheckSpec spec = fast(Kind::kTcp);
  spec.fall = 3;
  c.set_targets({{7, kLoopback, port, spec}});
  c.start();
  ASSERT_TRUE(eventually([&] { return status_of(c, 7) == Health::kUp; }));

  listener.reset();  // the port now refuses
  ASSERT_TRUE(eventually([&] { return status_of(c, 7) == Health::kDown; }));
  EXPECT_GE(health_of(c, 7).consecutive_fail, 3u);

  // Listen on the same port again.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(kLoopbackHost);
  a.sin_port = htons(port);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(fd, SOMAXCONN), 0);
  ASSERT_TRUE(eventually([&] { return status_of(c, 7) == Health::kUp; }));
  c.stop();
  ::close(fd);

  auto events = ev.get();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_TRUE(events[0].up);
  EXPECT_FALSE(events[1].up);
  EXPECT_NE(events[1].reason.find("connect"), std::string::npos) << events[1].reason;
  EXPECT_TRUE(events[2].up);
}

TEST(HealthChecker, HttpExpectedStatusIsUpOtherIsDown) {
  HttpServer ok([](const std::string&) { return http_reply(200); });
  HttpServer unavailable([](const std::string&) { return http_reply(503); });
  HealthChecker c;
  HealthCheckSpec spec = fast(Kind::kHttp);
  spec.http_path = "/healthz";
  c.set_targets({{1, kLoopback, ok.port(), spec}, {2, kLoopback, unavailable.port(), spec}});
  c.start();
  ASSERT_TRUE(eventually([&] { return status_of(c, 1) == Health::kUp; }));
  ASSERT_TRUE(eventually([&] { return status_of(c, 2) == Health::kDown; }));
  c.stop();
  EXPECT_EQ(health_of(c, 2).last_error, "HTTP 503, expected 200");

  const std::string req = ok.last_request();
  EXPECT_EQ(req.rfind("GET /healthz HTTP/1.0\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("\r\nHost: 127.0.0.1:" + std::to_string(ok.port()) + "\r\n"),
            std::string::npos)
      << req;
  EXPECT_NE(req.find("\r\nConnection: close\r\n"), std::string::npos) << req;
}

// IPv6 backends are checked over AF_INET6: a listener on ::1 is up, a port nothing listens
// on is down (the v4 closed port, taken on ::1 too: nothing binds it there either).
TEST(HealthChecker, Ipv6BackendsAreCheckedOverIpv6) {
  Listener open(/*v6=*/true);
  Listener open4;  // the same port number on 127.0.0.1 would not make ::1 up
  const uint16_t closed = closed_port();
  HttpServer http([](const std::string&) { return http_reply(200); }, /*v6=*/true);
  Events ev;
  HealthChecker c(ev.callback());
  HealthCheckSpec spec = fast(Kind::kHttp);
  spec.http_path = "/v6";
  c.set_targets({{1, kLoopback6, open.port(), fast(Kind::kTcp)},
                 {2, kLoopback6, closed, fast(Kind::kTcp)},
                 {3, kLoopback6, http.port(), spec},
                 {4, kLoopback6, open4.port(), fast(Kind::kTcp)}});
  c.start();
  ASSERT_TRUE(eventually([&] { return status_of(c, 1) == Health::kUp; }));
  ASSERT_TRUE(eventually([&] { return status_of(c, 2) == Health::kDown; }));
  ASSERT_TRUE(eventually([&] { return status_of(c, 3) == Health::kUp; }));
  // A port open on 127.0.0.1 only: ::1 refuses it (the check went over IPv6).
  ASSERT_TRUE(eventually([&] { return status_of(c, 4) == Health::kDown; }));
  c.stop();
  EXPECT_NE(health_of(c, 2).last_error.find("refused"), std::string::npos) << health_of(c, 2).last_error;
  EXPECT_EQ(health_of(c, 1).ip, kLoopback6);
  // An IPv6 Host header is bracketed (RFC 3986 3.2.2), with its port.
  const std::string req = http.last_request();
  EXPECT_EQ(req.rfind("GET /v6 HTTP/1.0\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("\r\nHost: [::1]:" + std::to_string(http.port()) + "\r\n"), std::string::npos) << req;
}

TEST(HealthChecker, HttpExpectedStatusCanBeOtherThan200) {
  HttpServer server([](const std::string&) { return http_reply(204); });
  HealthChecker c;
  HealthCheckSpec spec = fast(Kind::kHttp);
  spec.http_status = 204;
  c.set_targets({{1, kLoopback, server.port(), spec}});
  c.start();
  ASSERT_TRUE(eventually([&] { return status_of(c, 1) == Health::kUp; }));
}

TEST(HealthChecker, HttpGarbageIsDown) {
  HttpServer server([](const std::string&) { return std::string("SSH-2.0-OpenSSH\r\n"); });
  HealthChecker c;
  c.set_targets({{1, kLoopback, server.port(), fast(Kind::kHttp)}});
  c.start();
  ASSERT_TRUE(eventually([&] { return status_of(c, 1) == Health::kDown; }));
  c.stop();
  EXPECT_NE(health_of(c, 1).last_error.find("malformed status line"), std::string::npos)
      << health_of(c, 1).last_error;
}

TEST(HealthChecker, SilentServerTimesOutAndIsDown) {
  HttpServer silent([](const std::string&) { return std::string(); });  // never answers
  HealthChecker c;
  HealthCheckSpec spec = fast(Kind::kHttp);
  spec.timeout_ms = 100;
  c.set_targets({{1, kLoopback, silent.port(), spec}});
  const auto start = std::chrono::steady_clock::now();
  c.start();
  ASSERT_TRUE(eventually([&] { return status_of(c, 1) == Health::kDown; }));
  // Not before the timeout: the connect and the request succeeded.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  c.stop();
  EXPECT_EQ(health_of(c, 1).last_error, "timeout after 100 ms waiting for the status line");
  EXPECT_GE(silent.requests(), 1);
}

TEST(HealthChecker, SetTargetsKeepsUnchangedDropsRemovedResetsReaddressed) {
  Listener a, b;
  HealthChecker c;
  c.set_targets({{1, kLoopback, a.port(), fast(Kind::kTcp)},
                 {2, kLoopback, b.port(), fast(Kind::kTcp)},
                 {3, kLoopback, b.port(), {.kind = Kind::kNone}}});  // not checked
  EXPECT_EQ(c.snapshot().size(), 2u);
  c.start();
  ASSERT_TRUE(
      eventually([&] { return status_of(c, 1) == Health::kUp && status_of(c, 2) == Health::kUp; }));

  // 1 unchanged except rise/fall: keeps its state. 2 gone. 4 new.
  HealthCheckSpec spec1 = fast(Kind::kTcp);
  spec1.fall = 9;
  c.set_targets({{1, kLoopback, a.port(), spec1}, {4, kLoopback, a.port(), fast(Kind::kTcp)}});
  auto snap = c.snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].backend_id, 1u);
  EXPECT_EQ(snap[0].status, Health::kUp);
  EXPECT_EQ(snap[1].backend_id, 4u);
  ASSERT_TRUE(eventually([&] { return status_of(c, 4) == Health::kUp; }));

  // 1 re-addressed to a closed port: starts over from unknown, then goes down at once.
  c.set_targets({{1, kLoopback, closed_port(), spec1}, {4, kLoopback, a.port(), fast(Kind::kTcp)}});
  EXPECT_EQ(health_of(c, 1).checks, 0u);
  ASSERT_TRUE(eventually([&] { return status_of(c, 1) == Health::kDown; }));
  c.stop();
}

TEST(HealthChecker, ManyTargetsOneThread) {
  // More targets than kMaxInFlight, half up and half down: all get decided.
  Listener open;
  const uint16_t closed = closed_port();
  std::vector<HealthChecker::Target> targets;
  const uint32_t n = HealthChecker::kMaxInFlight + 44;
  for (uint32_t i = 0; i < n; ++i)
    targets.push_back({i, kLoopback, i % 2 ? closed : open.port(), fast(Kind::kTcp)});
  HealthChecker c;
  c.set_targets(targets);
  c.start();
  ASSERT_TRUE(eventually([&] {
    for (const auto& t : c.snapshot())
      if (t.status != (t.backend_id % 2 ? Health::kDown : Health::kUp)) return false;
    return true;
  }));
}

TEST(HealthChecker, StopAndRestartKeepsStatus) {
  Listener open;
  HealthChecker c;
  c.set_targets({{1, kLoopback, open.port(), fast(Kind::kTcp)}});
  c.start();
  c.start();  // no-op
  ASSERT_TRUE(eventually([&] { return status_of(c, 1) == Health::kUp; }));
  c.stop();
  c.stop();  // no-op
  EXPECT_EQ(status_of(c, 1), Health::kUp);
  const uint64_t checks = health_of(c, 1).checks;
  c.start();
  ASSERT_TRUE(eventually([&] { return health_of(c, 1).checks > checks; }));
  EXPECT_EQ(status_of(c, 1), Health::kUp);
}

TEST(HealthChecker, CallbackMayCallBackIntoTheChecker) {
  Listener open;
  HealthChecker* self = nullptr;
  std::atomic<int> seen{0};
  HealthChecker c([&](uint32_t id, bool, const std::string&) {
    // As the daemon would: read the whole state in reaction to a change.
    EXPECT_EQ(self->statuses().count(id), 1u);
    ++seen;
  });
  self = &c;
  c.set_targets({{1, kLoopback, open.port(), fast(Kind::kTcp)}});
  c.start();
  ASSERT_TRUE(eventually([&] { return seen > 0; }));
}

}  // namespace
}  // namespace rondo::cp
