// Fuzzes BPE encoding of untrusted text (policy/bpe_tokenizer.h) with the
// test fixtures' tokenizers: the first input byte picks one and whether special
// tokens are added, the rest is the text. The ids must lie in the vocabulary
// and decode again. (The fixtures' small vocabularies leave bytes out, so
// decode(encode(text)) is not the text and is not compared.)
#include <memory>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "policy/tokenizer.h"

namespace {

std::vector<std::unique_ptr<r1kit::Tokenizer>> load_fixtures() {
  const std::string root = R1KIT_FIXTURES_DIR;
  std::vector<std::unique_ptr<r1kit::Tokenizer>> tokenizers;
  for (const char* name :
       {"tokenizers/bpe512", "tokenizers/bpe512_bytelevel", "tokenizers/bpe512_gpt2",
        "tokenizers/bpe_gpt2_noprefix", "tokenizers/bpe_llama3", "tokenizers/bpe_llama3_sequence",
        "tokenizers/char", "tiny-qwen2", "tiny-llama"}) {
    tokenizers.push_back(r1kit::load_tokenizer(root + "/" + name));
  }
  return tokenizers;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  static const auto tokenizers = load_fixtures();
  if (size == 0) return 0;
  const Tokenizer& tokenizer = *tokenizers[data[0] % tokenizers.size()];
  const bool add_special_tokens = data[0] & 0x80;
  const std::string_view text = fuzz::as_text(data + 1, size - 1);
  fuzz::accept_or_reject([&] {
    const auto ids = tokenizer.encode(text, add_special_tokens);
    for (int64_t id : ids) {
      if (id < 0 || id >= tokenizer.vocab_size()) std::abort();
    }
    (void)tokenizer.decode(ids);
    (void)tokenizer.decode(ids, /*skip_special_tokens=*/true);
  });
  return 0;
}
