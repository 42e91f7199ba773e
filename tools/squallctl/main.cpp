// squallctl's entry point: run() (ctl.hpp) on the process's streams and environment.
#include <cstdlib>
#include <iostream>

#include "tools/squallctl/ctl.hpp"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  const std::vector<std::string> args(argv + 1, argv + argc);
  const char* env = std::getenv("SQUALL_ENDPOINTS");
  const int code = squall::ctl::run(args, {std::cin, std::cout, std::cerr},
                                    env ? std::optional<std::string>(env) : std::nullopt);
  std::cout.flush();
  return code;
}
