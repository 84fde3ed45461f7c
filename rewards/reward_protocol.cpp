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

void check_reply_id(const nlohmann::json& reply, int64_t request_id) {
  if (!reply.is_object()) throw std::runtime_error("expected a JSON object");
  const std::string expected = std::to_string(request_id);
  auto id = reply.find("id");
  if (id == reply.end()) {
    throw std::runtime_error("no \"id\": the reply must echo the request's \"id\" (" + expected +
                             ")");
  }
  if (!id->is_number_integer() || id->get<int64_t>() != request_id) {
    throw std::runtime_error("\"id\" " + id->dump() + " is not the request's " + expected +
                             ": the program wrote a line too many or too few");
  }
}

}  // namespace r1kit
