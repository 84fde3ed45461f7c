// Plugins: shared libraries built against the installed r1kit whose static
// REGISTER_* lines add rewards, environments, prompt templates, stages or any
// other registered part when the library is loaded. Loading is idempotent (the
// same file twice registers once) and thread-safe; plugins are never unloaded.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace r1kit {

// Loads the shared library at `path`. Throws an I/O error naming the path
// and dlopen's message when it cannot be loaded, a config error naming the
// plugin when one of its registrations takes a name already registered.
void load_plugin(const std::string& path);

// `path` as written in a recipe: made absolute against `base_folder` (the
// recipe file's folder) when it is relative.
std::string resolve_plugin_path(const std::string& path, const std::filesystem::path& base_folder);

}  // namespace r1kit
