#include "rewards/reward.h"

#include <dlfcn.h>

#include <algorithm>
#include <mutex>

#include "common/config.h"
#include "common/error.h"

namespace r1kit {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, RewardFactory> factories;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

std::vector<RewardResult> RewardFn::score_batch(const std::vector<Sample>& samples,
                                                Deadline deadline) const {
  std::vector<RewardResult> results;
  results.reserve(samples.size());
  for (const Sample& sample : samples) results.push_back(score_until(sample, deadline));
  return results;
}

void register_reward(const std::string& name, RewardFactory factory) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (name.empty()) throw_config_error("register_reward: empty reward name");
  if (!r.factories.emplace(name, std::move(factory)).second) {
    throw_config_error("reward \"" + name + "\" is registered twice");
  }
}

std::vector<std::string> registered_rewards() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, _] : r.factories) names.push_back(name);
  return names;
}

std::unique_ptr<RewardFn> make_reward(const std::string& name, const nlohmann::json& options,
                                      const std::string& source) {
  RewardFactory factory;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.factories.find(name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    std::vector<std::string> known = registered_rewards();
    std::string guess = did_you_mean(name, known);
    throw_config_error(source + ": unknown reward \"" + name + "\"" +
                       (guess.empty() ? "" : " (did you mean \"" + guess + "\"?)") +
                       "; known rewards: " + join(known));
  }
  if (!options.is_null() && !options.is_object()) {
    throw_config_error(source + ": expected an object of options, got " + options.dump());
  }
  return factory(options.is_null() ? nlohmann::json::object() : options, source);
}

void load_reward_plugin(const std::string& path) {
  // RTLD_NODELETE keeps the plugin's code mapped for rewards built from it.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
  if (!handle) {
    const char* message = dlerror();
    throw_io_error(path + ": cannot load reward plugin: " + (message ? message : "unknown error"));
  }
}

namespace detail {
void reject_reward_options(const std::string& name, const std::string& source) {
  throw_config_error(source + ": reward \"" + name + "\" takes no options");
}
}  // namespace detail

}  // namespace r1kit
