// Tiny models for the tests: the one shape of the random models the tests
// build in memory or write as Hugging Face folders, and the paths of the
// committed fixtures under tests/fixtures (models from tools/make_fixtures.py,
// tokenizers from tools/fixtures_tokenizer.py). Plain functions, any thread.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "common/safetensors.h"
#include "policy/model_config.h"

namespace r1kit::testing {

// The characters of the CharTokenizer that write_tiny_policy saves: digits,
// arithmetic, a few letters, space, newline, ':' and '?'.
inline constexpr char kTinyAlphabet[] = "0123456789+-*= abcdefgh\n:?";

// The committed fixture models: a Llama (untied lm_head, Llama-3 RoPE scaling),
// a Qwen2 (q/k/v biases, tied embeddings) and two Qwen3 (q/k norms, head_dim
// apart from hidden / heads; tied, and untied with linear RoPE scaling), each
// with the bpe512 tokenizer.
inline constexpr const char* kFixtureModels[] = {"tiny-llama", "tiny-qwen2", "tiny-qwen3",
                                                 "tiny-qwen3-untied"};

// A fixture model's name as a GoogleTest parameter name: "tiny-qwen3-untied" -> "qwen3_untied".
inline std::string fixture_test_name(const std::string& model) {
  std::string name = model.substr(std::string("tiny-").size());
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

// tests/fixtures/<relative>: a fixture model ("tiny-llama") or tokenizer
// ("tokenizers/bpe512"). Inline, like the next one, so a suite that only reads
// fixtures links without the policy folder.
inline std::filesystem::path fixture_path(const std::string& relative) {
  return std::filesystem::path(R1KIT_FIXTURES_DIR) / relative;
}

// tests/fixtures/<model>/expected.safetensors: the padded inputs and the
// logits and greedy tokens transformers computed for them.
inline std::map<std::string, at::Tensor> fixture_expected_values(const std::string& model) {
  return read_safetensors(fixture_path(model) / "expected.safetensors").tensors;
}

// Largest |a - b| over the positions where mask (B, T) is 1: logits against a
// fixture's, padding left out.
inline double max_difference(const at::Tensor& a, const at::Tensor& b, const at::Tensor& mask) {
  return (a - b).abs().index({mask.to(at::kBool)}).max().item<double>();
}

// A 2-layer Llama of width 32 (4 query heads, 2 key/value heads, SwiGLU width
// 64, untied lm_head) that trains in seconds on a CPU; no special token ids.
ModelConfig tiny_model_config(int64_t vocab_size, int64_t max_position_embeddings = 64);

// Writes a random policy of tiny_model_config (its eos the tokenizer's) and a
// CharTokenizer over `alphabet` into `folder` as a Hugging Face folder;
// returns `folder`. The weights depend on `seed` and the alphabet's size only.
std::filesystem::path write_tiny_policy(const std::filesystem::path& folder, uint64_t seed = 3,
                                        const std::string& alphabet = kTinyAlphabet);

}  // namespace r1kit::testing
