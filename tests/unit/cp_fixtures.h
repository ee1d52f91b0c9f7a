// Control-plane test fixtures shared by the unit tests.
#pragma once

namespace rondo::cp::test {

// Two VIPs on one address: web (tcp/80, three backends) and dns (udp/53, one backend).
inline constexpr const char* kTwoVipsConfig = R"(local_ips: [198.51.100.100]
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.3, port: 3000}
      - {address: 198.51.100.3, port: 3001}
      - {address: 198.51.100.4, port: 3000}
  - name: dns
    address: 203.0.113.10
    port: 53
    protocol: udp
    backends:
      - {address: 198.51.100.5, port: 53}
)";

}  // namespace rondo::cp::test
