// Shared by the rollout tests: a small random Llama-family policy and a
// character tokenizer, built in memory so the tests need no fixture files.
#pragma once

#include <memory>

#include "policy/char_tokenizer.h"
#include "policy/checkpoint.h"
#include "rollout/engine.h"

namespace r1kit::testing {

inline ModelConfig tiny_config(int64_t vocab_size) {
  ModelConfig config;
  config.model_type = "llama";
  config.vocab_size = vocab_size;
  config.hidden_size = 32;
  config.intermediate_size = 64;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.max_position_embeddings = 96;
  config.tie_word_embeddings = false;
  return config;
}

inline std::unique_ptr<CharTokenizer> tiny_tokenizer() {
  return std::make_unique<CharTokenizer>("0123456789+-*= abcdefghij\n",
                                         std::vector<std::string>{"<think>", "</think>"});
}

// Larger init std than Hugging Face's 0.02 so sampled text is varied.
inline std::shared_ptr<PolicyWeights> tiny_policy(int64_t vocab_size, uint64_t seed = 7) {
  return std::make_shared<PolicyWeights>(
      make_random_transformer(tiny_config(vocab_size), seed, 0.3));
}

}  // namespace r1kit::testing
