// Shared by the rollout tests: a small random Llama-family policy of the
// shared tiny shape (tests/support/tiny_model.h) and a character tokenizer
// with think tags, built in memory so the tests need no fixture files.
#pragma once

#include <memory>

#include "policy/char_tokenizer.h"
#include "policy/checkpoint.h"
#include "rollout/engine.h"
#include "tests/support/tiny_model.h"

namespace r1kit::testing {

// The context of the rollout tests' models: room for their longest prompts
// plus completions.
inline constexpr int64_t kRolloutContext = 96;

inline std::unique_ptr<CharTokenizer> tiny_tokenizer() {
  return std::make_unique<CharTokenizer>("0123456789+-*= abcdefghij\n",
                                         std::vector<std::string>{"<think>", "</think>"});
}

// Larger init std than Hugging Face's 0.02 so sampled text is varied.
inline std::shared_ptr<PolicyWeights> tiny_policy(int64_t vocab_size, uint64_t seed = 7) {
  return std::make_shared<PolicyWeights>(
      make_random_transformer(tiny_model_config(vocab_size, kRolloutContext), seed, 0.3));
}

}  // namespace r1kit::testing
