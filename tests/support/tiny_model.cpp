#include "tests/support/tiny_model.h"

#include "policy/char_tokenizer.h"
#include "policy/checkpoint.h"

namespace r1kit::testing {

ModelConfig tiny_model_config(int64_t vocab_size, int64_t max_position_embeddings) {
  ModelConfig config;
  config.model_type = "llama";
  config.vocab_size = vocab_size;
  config.hidden_size = 32;
  config.intermediate_size = 64;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.max_position_embeddings = max_position_embeddings;
  config.tie_word_embeddings = false;
  return config;
}

std::filesystem::path write_tiny_policy(const std::filesystem::path& folder, uint64_t seed,
                                        const std::string& alphabet) {
  CharTokenizer tokenizer(alphabet);
  ModelConfig config = tiny_model_config(tokenizer.vocab_size());
  config.eos_token_ids = {*tokenizer.eos_id()};
  Transformer model = make_random_transformer(config, seed);
  save_pretrained(model, folder);
  tokenizer.save_folder(folder);
  return folder;
}

}  // namespace r1kit::testing
