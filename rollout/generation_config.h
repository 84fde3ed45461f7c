// What a model folder says about generating from it, read as transformers reads
// it: the ids that end a sequence (the tokenizer's eos, config.json's and
// generation_config.json's eos_token_id, an int or a list) and
// generation_config.json's sampling defaults. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "policy/model_config.h"
#include "policy/tokenizer.h"
#include "rollout/sampling_params.h"

namespace r1kit {

// Every id that ends a sequence, in this order and without repeats: the
// tokenizer's eos (when `tokenizer` is given and has one), config.json's
// eos_token_id, generation_config.json's eos_token_id (Qwen2.5-Instruct:
// [151645, 151643]). TRL's GRPOTrainer stops on the same set.
std::vector<int64_t> end_of_sequence_ids(const ModelConfig& config, const Tokenizer* tokenizer);

// The sampling knobs generation_config.json names, each applied to `params`
// unless its SamplingParams key is in `keep` (the knobs the user set): temperature,
// top_p, top_k, repetition_penalty; do_sample false means greedy (temperature 0).
// A missing do_sample keeps r1kit's default of sampling (transformers would
// decode greedily). A value of the wrong type is a config error naming `source`.
// Returns the keys it applied.
std::vector<std::string> apply_generation_config(const nlohmann::json& generation_config,
                                                 const std::vector<std::string>& keep,
                                                 SamplingParams& params, const std::string& source);

}  // namespace r1kit
