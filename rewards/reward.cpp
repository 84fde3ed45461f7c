#include "rewards/reward.h"

#include "common/error.h"
#include "common/plugin.h"

namespace r1kit {

Registry<RewardFactory>& reward_registry() {
  static Registry<RewardFactory> registry("reward");
  return registry;
}

std::vector<RewardResult> RewardFn::score_batch(const std::vector<Sample>& samples,
                                                Deadline deadline) const {
  std::vector<RewardResult> results;
  results.reserve(samples.size());
  for (const Sample& sample : samples) results.push_back(score_until(sample, deadline));
  return results;
}

void register_reward(const std::string& name, RewardFactory factory) {
  reward_registry().add(name, std::move(factory));
}

std::vector<std::string> registered_rewards() { return reward_registry().names(); }

std::unique_ptr<RewardFn> make_reward(const std::string& name, const nlohmann::json& options,
                                      const std::string& source) {
  RewardFactory factory = reward_registry().get(name, source);
  if (!options.is_null() && !options.is_object()) {
    throw_config_error(source + ": expected an object of options, got " + options.dump());
  }
  return factory(options.is_null() ? nlohmann::json::object() : options, source);
}

void load_reward_plugin(const std::string& path) { load_plugin(path); }

namespace detail {
void reject_reward_options(const std::string& name, const std::string& source) {
  throw_config_error(source + ": reward \"" + name + "\" takes no options");
}
}  // namespace detail

}  // namespace r1kit
