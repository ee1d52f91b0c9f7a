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

// Two interfaces on port 0, clients (VLAN 100) and backends (untagged, MTU 9000), a route
// and a static neighbour on each: one named by interface, one by port (port 0: backends,
// its untagged interface); one vip.
inline constexpr const char* kVlanConfig = R"(local_ips: [198.51.100.100]
interfaces:
  - {name: clients, port: 0, vlan: 100, addresses: [192.0.2.1/24]}
  - {name: backends, port: 0, mtu: 9000, addresses: [198.51.100.254/24]}
routes:
  - {prefix: 0.0.0.0/0, via: 192.0.2.254, interface: clients}
  - {prefix: 10.0.0.0/8, via: 198.51.100.1, port: 0}
neighbours:
  - {ip: 192.0.2.254, mac: "02:00:00:00:00:fe", interface: clients}
  - {ip: 198.51.100.3, mac: "02:00:00:00:00:03", port: 0}
vips:
  - name: web
    address: 203.0.113.10
    port: 80
    backends:
      - {address: 198.51.100.3, port: 3000}
)";

}  // namespace rondo::cp::test
