// The registry of `r1kit` subcommands: each apps/<name>.cpp registers one with
// REGISTER_SUBCOMMAND. Its setup function declares the options on CLI11's
// sub-app and returns the action main() runs after a successful parse.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace r1kit::apps {

// Runs the parsed command; returns the process exit code.
using Action = std::function<int()>;

struct Subcommand {
  std::string name;
  std::string summary;
  std::function<Action(CLI::App&)> setup;
};

// All registered subcommands, in registration order.
std::vector<Subcommand>& subcommands();

struct SubcommandRegistration {
  SubcommandRegistration(std::string name, std::string summary,
                         std::function<Action(CLI::App&)> setup);
};

}  // namespace r1kit::apps

#define R1KIT_CONCAT_INNER(a, b) a##b
#define R1KIT_CONCAT(a, b) R1KIT_CONCAT_INNER(a, b)
#define REGISTER_SUBCOMMAND(name, summary, setup)                                                \
  static ::r1kit::apps::SubcommandRegistration R1KIT_CONCAT(subcommand_registration_, __LINE__)( \
      name, summary, setup)
