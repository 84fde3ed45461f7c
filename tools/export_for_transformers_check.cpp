// Writes the folders that `python tools/make_fixtures.py --check DIR/<name>`
// loads in transformers, to show that a folder r1kit writes is read there the
// same way (see that script's docstring for the handshake):
//   build/export_for_transformers_check DIR
// For each fixture model (tests/fixtures/tiny-llama, tiny-qwen2, tiny-qwen3,
// tiny-qwen3-untied) a model that is not the fixture itself, r1kit's random
// init saved in shards, plus expected_logits.safetensors = {tokens,
// attention_mask, logits} computed by r1kit after reloading it; and
// DIR/tiny-qwen2-reward, a reward model whose file holds the scores at the
// last real token of right-padded rows.
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <string>

#include "common/safetensors.h"
#include "policy/checkpoint.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = R1KIT_FIXTURES_DIR;

std::map<std::string, at::Tensor> fixture_expected_values(const std::string& model) {
  return read_safetensors(kFixtures / model / "expected.safetensors").tensors;
}

void export_causal_lm(const fs::path& root, const std::string& name) {
  Transformer source = load_pretrained(kFixtures / name);
  Transformer model = make_random_transformer(source->config(), 42, 0.1);
  const fs::path folder = root / name;
  save_pretrained(model, folder, {.max_shard_bytes = 200'000});
  const auto expected = fixture_expected_values(name);
  const at::Tensor tokens = expected.at("tokens_left"), mask = expected.at("mask_left");
  const at::Tensor logits = load_pretrained(folder)->forward(tokens, mask);  // (B, T, V)
  write_safetensors(folder / "expected_logits.safetensors",
                    {{"tokens", tokens}, {"attention_mask", mask}, {"logits", logits}});
  std::printf("%s\n", folder.c_str());
}

// Right padding with pad_token_id; the score at the last real token.
void export_reward_model(const fs::path& root) {
  Transformer model =
      make_random_transformer(load_pretrained(kFixtures / "tiny-qwen2")->config(), 43, 0.1);
  ScalarHead head(ScalarHeadKind::kReward, model->config().hidden_size);
  const fs::path folder = root / "tiny-qwen2-reward";
  save_pretrained(model, folder, {.head = head});
  const auto expected = fixture_expected_values("tiny-qwen2");
  const at::Tensor tokens = expected.at("tokens_right"), mask = expected.at("mask_right");
  const at::Tensor scores = head->at_last_token(model->forward_hidden(tokens, mask), mask);  // (B)
  write_safetensors(folder / "expected_logits.safetensors",
                    {{"tokens", tokens}, {"attention_mask", mask}, {"scores", scores}});
  std::printf("%s\n", folder.c_str());
}

}  // namespace
}  // namespace r1kit

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path root = argv[1];
    c10::InferenceMode inference;
    for (const char* name : {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-untied"})
      r1kit::export_causal_lm(root, name);
    r1kit::export_reward_model(root);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "export_for_transformers_check: %s\n", e.what());
    return 1;
  }
  return 0;
}
