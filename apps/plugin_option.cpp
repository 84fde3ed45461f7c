#include "apps/plugin_option.h"

#include <CLI/CLI.hpp>

#include "common/plugin.h"

namespace r1kit::apps {

void add_plugin_option(CLI::App& app, std::vector<std::string>& paths) {
  app.add_option("--plugin", paths,
                 "load a shared library of custom rewards, environments, templates or stages "
                 "(repeatable; a recipe's \"plugins\" key does the same)")
      ->type_name("LIB.so");
}

void load_plugins(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) load_plugin(path);
}

}  // namespace r1kit::apps
