// rondoctl: the operator's command line for rondo-controlplane (see `rondoctl --help` and
// docs/controlplane.md). It talks to the control plane only, over its local API socket.
#include <iostream>
#include <string>
#include <variant>
#include <vector>

#include "controlplane/cli/cli.h"

int main(int argc, char** argv) {
  using namespace rondo::cp;
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = parse_cli(args);
  if (auto* e = std::get_if<CliExit>(&parsed)) {
    std::ostream& os = e->code == kExitOk ? std::cout : std::cerr;
    os << e->text;
    if (!e->text.empty() && e->text.back() != '\n') os << "\n";
    return e->code;
  }
  return run_cli(std::get<CliInvocation>(parsed), std::cout, std::cerr);
}
