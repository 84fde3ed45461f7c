// `r1kit`: the command line. Parses the global options, hands the rest to the
// subcommand registered under argv[1], and turns every error into one line on
// stderr and an exit code: 2 for usage mistakes, never a stack trace.
#include <c10/util/Exception.h>
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "apps/subcommand.h"
#include "common/error.h"
#include "common/logging.h"

namespace r1kit::apps {

Registry<Subcommand>& subcommand_registry() {
  static Registry<Subcommand> registry("command");
  return registry;
}

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

int run(int argc, char** argv) {
  CLI::App app{"r1kit: reinforcement-learning post-training of reasoning language models", "r1kit"};
  app.set_version_flag("--version", "r1kit 0.1.0");
  std::string level_name = "info";
  app.add_option("--log-level", level_name, "debug, info, warning or error")->capture_default_str();
  app.require_subcommand(1);

  std::vector<std::pair<CLI::App*, Action>> actions;
  for (const std::string& name : subcommand_registry().names()) {
    Subcommand command = subcommand_registry().get(name);
    CLI::App* sub = app.add_subcommand(name, command.summary);
    actions.emplace_back(sub, command.setup(*sub));
  }

  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "--log-level") {
      ++i;
      continue;
    }
    if (word.starts_with("-")) continue;
    // An unknown command is a usage mistake: the registry's message, exit 2.
    try {
      subcommand_registry().get(word);
    } catch (const Error& e) {
      throw_usage_error(e.what());
    }
    break;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where;
    for (auto& [sub, _] : actions) {
      if (sub->parsed()) where = " " + sub->get_name();
    }
    std::cerr << "r1kit" << where << ": " << e.what() << "; run 'r1kit" << where << " --help'\n";
    return 2;
  }
  set_log_level(parse_log_level(level_name));
  for (auto& [sub, action] : actions) {
    if (sub->parsed()) return action();
  }
  return 2;
}

}  // namespace
}  // namespace r1kit::apps

int main(int argc, char** argv) {
  // Keep freed tensor buffers in the heap instead of returning them to the
  // kernel: generation and learning reallocate the same sizes every step, and
  // fresh pages cost page faults (about 7% of a decode step otherwise).
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  try {
    return r1kit::apps::run(argc, argv);
  } catch (const r1kit::Error& e) {
    std::cerr << "r1kit: error: " << e.what() << "\n";
    return e.exit_code();
  } catch (const c10::Error& e) {
    std::cerr << "r1kit: internal error: " << r1kit::apps::first_line(e.what_without_backtrace())
              << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "r1kit: error: " << e.what() << "\n";
    return 1;
  }
}
