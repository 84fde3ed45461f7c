// The registry of `r1kit` subcommands: each apps/<name>.cpp registers one with
// REGISTER_SUBCOMMAND. Its setup function declares the options on CLI11's
// sub-app and returns the action main() runs after a successful parse. The
// registry is filled at load time and read by main() on one thread.
#pragma once

#include <functional>
#include <string>

#include "common/registry.h"

namespace CLI {
class App;
}

namespace r1kit::apps {

// Runs the parsed command; returns the process exit code.
using Action = std::function<int()>;

struct Subcommand {
  std::string summary;                     // one line for `r1kit --help`
  std::function<Action(CLI::App&)> setup;  // declares the options, returns the action
};

// Every registered subcommand by name; `r1kit --help` lists them sorted.
Registry<Subcommand>& subcommand_registry();

}  // namespace r1kit::apps

// Registers the subcommand `name` with its help line and setup function.
#define REGISTER_SUBCOMMAND(name, summary, setup)            \
  R1KIT_REGISTER(::r1kit::apps::subcommand_registry(), name, \
                 (::r1kit::apps::Subcommand{summary, setup}))
