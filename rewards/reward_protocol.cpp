#include "rewards/reward_protocol.h"

#include <stdexcept>

namespace r1kit {

nlohmann::json sample_to_json(const Sample& sample) {
  return {{"prompt", sample.prompt},
          {"completion", sample.completion},
          {"completion_ids", sample.completion_ids},
          {"reference", sample.reference},
          {"metadata", sample.metadata.is_null() ? nlohmann::json::object() : sample.metadata}};
}

RewardResult parse_reward_reply(const nlohmann::json& reply) {
  if (!reply.is_object()) throw std::runtime_error("expected a JSON object");
  auto reward = reply.find("reward");
  if (reward == reply.end()) throw std::runtime_error("no \"reward\" key");
  RewardResult result;
  if (reward->is_number()) {
    result.value = reward->get<double>();
  } else if (!reward->is_null()) {
    throw std::runtime_error("\"reward\" must be a number or null");
  }
  if (auto components = reply.find("components");
      components != reply.end() && !components->is_null()) {
    if (!components->is_object()) throw std::runtime_error("\"components\" must be an object");
    for (const auto& [name, value] : components->items()) {
      if (!value.is_number())
        throw std::runtime_error("component \"" + name + "\" is not a number");
      result.components[name] = value.get<double>();
    }
  }
  if (auto info = reply.find("info"); info != reply.end()) result.info = *info;
  return result;
}

}  // namespace r1kit
