// Registry<Factory>: the name -> factory table behind every part a recipe names
// (rewards, environments, stages, prompt templates, advantage estimators, loss
// aggregations, KL estimators, logits processors, subcommands). Duplicates are
// refused; an unknown name lists the known ones. Thread-safe; registries are
// function-local statics filled by R1KIT_REGISTER lines at load time.
#pragma once

#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace r1kit {

// What to say of a name a registry of `kind` does not know:
//   unknown <kind> "<name>" (did you mean "<guess>"?); known: a, b, c
std::string unknown_name_message(const std::string& kind, const std::string& name,
                                 const std::vector<std::string>& known);

// The config error "<context>: " + unknown_name_message(...); `context`
// ("recipe.json: rewards[0].name") may be empty.
[[noreturn]] void throw_unknown_name(const std::string& kind, const std::string& name,
                                     const std::vector<std::string>& known,
                                     const std::string& context);

// The error for a second registration of `name` (a config error: a plugin
// that reuses a built-in's name is a setup mistake).
[[noreturn]] void throw_duplicate_name(const std::string& kind, const std::string& name);

namespace detail {
// While load_plugin() runs dlopen, a registration that fails is recorded here
// (returns true) and reported by load_plugin as an error naming the plugin;
// outside it returns false and the caller rethrows.
bool record_plugin_registration_error(const std::string& message);
}  // namespace detail

template <class Factory>
class Registry {
 public:
  // `kind` names one entry in messages: "reward", "environment", ...
  explicit Registry(std::string kind) : kind_(std::move(kind)) {}
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Adds `factory` as `name`; a taken or empty name throws a config error.
  void add(const std::string& name, Factory factory) {
    std::lock_guard lock(mutex_);
    if (name.empty() || factories_.count(name)) throw_duplicate_name(kind_, name);
    factories_.emplace(name, std::move(factory));
  }

  // The factory of `name`; an unknown one throws throw_unknown_name's error
  // with `context` in front.
  Factory get(const std::string& name, const std::string& context = "") const {
    std::unique_lock lock(mutex_);
    auto found = factories_.find(name);
    if (found != factories_.end()) return found->second;
    lock.unlock();
    throw_unknown_name(kind_, name, names(), context);
  }

  bool contains(const std::string& name) const {
    std::lock_guard lock(mutex_);
    return factories_.count(name) > 0;
  }

  // The registered names, sorted.
  std::vector<std::string> names() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> sorted;
    for (const auto& entry : factories_) sorted.push_back(entry.first);
    return sorted;
  }

  const std::string& kind() const { return kind_; }

 private:
  std::string kind_;
  mutable std::mutex mutex_;
  std::map<std::string, Factory> factories_;
};

}  // namespace r1kit

#define R1KIT_REGISTRY_CONCAT_INNER(a, b) a##b
#define R1KIT_REGISTRY_CONCAT(a, b) R1KIT_REGISTRY_CONCAT_INNER(a, b)

// Adds `factory` to `registry` (an expression giving a Registry&) as `name`
// when the file is loaded: the one line that makes a built-in or a plugin's
// part known. Use at namespace scope, once per name.
#define R1KIT_REGISTER(registry, name, factory)                                                   \
  [[maybe_unused]] static const bool R1KIT_REGISTRY_CONCAT(r1kit_registered_, __COUNTER__) = [] { \
    try {                                                                                         \
      (registry).add(name, factory);                                                              \
    } catch (const std::exception& error) {                                                       \
      if (!::r1kit::detail::record_plugin_registration_error(error.what())) throw;                \
    }                                                                                             \
    return true;                                                                                  \
  }()
