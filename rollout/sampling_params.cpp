#include "rollout/sampling_params.h"

#include <algorithm>

#include "common/error.h"
#include "rollout/logits_processor.h"

namespace r1kit {

void SamplingParams::visit(ConfigVisitor& v) {
  v.field("temperature", temperature, {.min = 0.0});
  v.field("top_p", top_p, {.min = 0.0, .max = 1.0, .min_exclusive = true});
  v.field("top_k", top_k, {.min = 0.0});
  v.field("min_p", min_p, {.min = 0.0, .max = 1.0});
  v.field("repetition_penalty", repetition_penalty, {.min = 0.0, .min_exclusive = true});
  v.field("banned_token_ids", banned_token_ids, {.min = 0.0});
  v.field("mask_padded_vocab", mask_padded_vocab);
  v.field("logits_processors", logits_processors);
  v.field("max_new_tokens", max_new_tokens, {.min = 1.0});
  v.field("stop_token_ids", stop_token_ids, {.min = 0.0});
  v.field("stop_strings", stop_strings);
  v.field("stop_at_eos", stop_at_eos);
  v.field("n", n, {.min = 1.0});
  v.field("seed", seed, {.min = 0.0});

  if (std::string problem = logits_processor_order_problem(*this); !problem.empty())
    v.fail("logits_processors", problem);
}

void SamplingParams::validate(int64_t vocab_size) const {
  auto fail = [](const std::string& message) { throw_usage_error("sampling: " + message); };
  if (!(temperature >= 0.0)) fail("temperature must be >= 0, got " + std::to_string(temperature));
  if (!(top_p > 0.0 && top_p <= 1.0)) fail("top_p must be in (0, 1], got " + std::to_string(top_p));
  if (top_k < 0) fail("top_k must be >= 0 (0 = disabled), got " + std::to_string(top_k));
  if (!(min_p >= 0.0 && min_p <= 1.0))
    fail("min_p must be in [0, 1], got " + std::to_string(min_p));
  if (!(repetition_penalty > 0.0))
    fail("repetition_penalty must be > 0 (1 = disabled), got " +
         std::to_string(repetition_penalty));
  if (std::string problem = logits_processor_order_problem(*this); !problem.empty())
    fail("logits_processors: " + problem);
  if (max_new_tokens < 1)
    fail("max_new_tokens must be >= 1, got " + std::to_string(max_new_tokens));
  if (n < 1) fail("n (samples per prompt) must be >= 1, got " + std::to_string(n));
  for (int64_t id : stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      fail("stop token id " + std::to_string(id) + " is outside the vocabulary [0, " +
           std::to_string(vocab_size) + ")");
    }
  }
  for (int64_t id : banned_token_ids) {
    if (id < 0 || id >= vocab_size) {
      fail("banned token id " + std::to_string(id) + " is outside the vocabulary [0, " +
           std::to_string(vocab_size) + ")");
    }
  }
  for (const auto& text : stop_strings) {
    if (text.empty()) fail("stop_strings must not contain an empty string");
  }
}

SamplingParams masked_padded_vocab(SamplingParams params, int64_t model_vocab_size,
                                   int64_t tokenizer_vocab_size) {
  if (tokenizer_vocab_size <= 0 || tokenizer_vocab_size >= model_vocab_size) return params;
  params.mask_padded_vocab = true;
  std::vector<std::string>& order = params.logits_processors;
  if (!order.empty() && std::find(order.begin(), order.end(), "mask_padded_vocab") == order.end()) {
    auto temperature = std::find(order.begin(), order.end(), "temperature");
    order.insert(temperature, "mask_padded_vocab");
  }
  return params;
}

}  // namespace r1kit
