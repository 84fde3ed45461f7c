// The `--plugin LIB.so` option that train, eval, generate and reward share: a
// repeatable path to a shared library of custom rewards, environments,
// templates or stages, loaded before the command reads its recipe.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace r1kit::apps {

// Declares --plugin on `app`, filling `paths`.
void add_plugin_option(CLI::App& app, std::vector<std::string>& paths);

// Loads each of `paths` (common/plugin.h's load_plugin), in order.
void load_plugins(const std::vector<std::string>& paths);

}  // namespace r1kit::apps
