#include "rollout/generation_config.h"

#include <algorithm>
#include <type_traits>

#include "common/error.h"

namespace r1kit {
namespace {

// An id or a list of ids; null or absent = none.
std::vector<int64_t> id_list(const nlohmann::json& value, const std::string& where) {
  if (value.is_null()) return {};
  if (value.is_number_integer()) return {value.get<int64_t>()};
  if (value.is_array()) {
    std::vector<int64_t> ids;
    for (const nlohmann::json& id : value) {
      if (!id.is_number_integer()) break;
      ids.push_back(id.get<int64_t>());
    }
    if (ids.size() == value.size()) return ids;
  }
  throw_config_error(where + ": expected an integer or a list of integers, got " + value.dump());
}

}  // namespace

std::vector<int64_t> end_of_sequence_ids(const ModelConfig& config, const Tokenizer* tokenizer) {
  std::vector<int64_t> ids;
  auto add = [&](int64_t id) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  };
  if (tokenizer && tokenizer->eos_id()) add(*tokenizer->eos_id());
  for (int64_t id : config.eos_token_ids) add(id);
  if (config.generation_config.is_object() && config.generation_config.contains("eos_token_id")) {
    for (int64_t id :
         id_list(config.generation_config["eos_token_id"], "generation_config.json: eos_token_id"))
      add(id);
  }
  return ids;
}

std::vector<std::string> apply_generation_config(const nlohmann::json& generation_config,
                                                 const std::vector<std::string>& keep,
                                                 SamplingParams& params,
                                                 const std::string& source) {
  std::vector<std::string> applied;
  if (!generation_config.is_object()) return applied;
  auto kept = [&](const char* key) {
    return std::find(keep.begin(), keep.end(), key) != keep.end();
  };
  auto number = [&](const char* key, auto& field) {
    auto it = generation_config.find(key);
    if (it == generation_config.end() || it->is_null() || kept(key)) return;
    if (!it->is_number()) {
      throw_config_error(source + ": " + key + " must be a number, got " + it->dump());
    }
    using Field = std::remove_reference_t<decltype(field)>;
    if (std::is_integral_v<Field> && !it->is_number_integer()) {
      // top_k: 1e300 has no integer value (converting it is undefined behaviour).
      throw_config_error(source + ": " + key + " must be an integer, got " + it->dump());
    }
    field = it->get<Field>();
    applied.push_back(key);
  };
  number("temperature", params.temperature);
  number("top_p", params.top_p);
  number("top_k", params.top_k);
  number("repetition_penalty", params.repetition_penalty);
  auto do_sample = generation_config.find("do_sample");
  if (do_sample != generation_config.end() && do_sample->is_boolean() && !do_sample->get<bool>() &&
      !kept("temperature")) {
    params.temperature = 0.0;
    applied.push_back("do_sample");
  }
  return applied;
}

}  // namespace r1kit
