#include "common/plugin.h"

#include <dlfcn.h>

#include <mutex>
#include <set>
#include <vector>

#include "common/error.h"
#include "common/registry.h"

namespace r1kit {
namespace detail {
// Defined beside record_plugin_registration_error (common/registry.cpp), so
// that every program with a registry links: where load_plugin collects a
// plugin's registration errors while dlopen runs; null = nowhere.
void collect_plugin_registration_errors(std::vector<std::string>* errors);
}  // namespace detail
void load_plugin(const std::string& path) {
  static std::mutex mutex;
  static std::set<std::string> loaded;
  std::error_code error;
  const std::string key = std::filesystem::weakly_canonical(path, error).string();
  const std::lock_guard lock(mutex);
  if (loaded.count(key)) return;
  if (!std::filesystem::exists(path)) throw_io_error(path + ": cannot load plugin: no such file");
  // RTLD_NODELETE keeps the plugin's code mapped for the parts built from it;
  // RTLD_GLOBAL lets one plugin use another's symbols.
  std::vector<std::string> errors;
  detail::collect_plugin_registration_errors(&errors);
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
  detail::collect_plugin_registration_errors(nullptr);
  if (!errors.empty()) throw_config_error(path + ": plugin: " + errors.front());
  if (!handle) {
    const char* message = dlerror();
    throw_io_error(path + ": cannot load plugin: " + (message ? message : "unknown error"));
  }
  loaded.insert(key);
}

std::string resolve_plugin_path(const std::string& path, const std::filesystem::path& base_folder) {
  const std::filesystem::path given(path);
  if (given.is_absolute() || base_folder.empty()) return path;
  return (base_folder / given).lexically_normal().string();
}

}  // namespace r1kit
