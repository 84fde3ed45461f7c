// Fuzzes decoding untrusted ids (policy/tokenizer.h: decode, token_bytes and
// StreamDecoder) with the test fixtures' tokenizers: the first input byte picks
// one and the flags, the rest is a list of 16-bit ids, some outside the
// vocabulary. For valid ids, the streamed text must equal decode().
#include <memory>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "policy/tokenizer.h"

namespace {

std::vector<std::unique_ptr<r1kit::Tokenizer>> load_fixtures() {
  const std::string root = R1KIT_FIXTURES_DIR;
  std::vector<std::unique_ptr<r1kit::Tokenizer>> tokenizers;
  for (const char* name : {"tokenizers/bpe512", "tokenizers/bpe512_gpt2", "tokenizers/bpe_llama3",
                           "tokenizers/char", "tiny-qwen2", "tiny-llama"}) {
    tokenizers.push_back(r1kit::load_tokenizer(root + "/" + name));
  }
  return tokenizers;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  static const bool quiet = (fuzz::quiet_logging(), true);
  (void)quiet;
  static const auto tokenizers = load_fixtures();
  if (size == 0) return 0;
  const Tokenizer& tokenizer = *tokenizers[data[0] % tokenizers.size()];
  const bool skip_special_tokens = data[0] & 0x80;
  std::vector<int64_t> ids;
  bool all_valid = true;
  for (size_t i = 1; i + 1 < size; i += 2) {
    int64_t id = data[i] | (data[i + 1] << 8);
    if (id >= 0x8000) id -= 0x10000;  // negative ids too
    ids.push_back(id);
    all_valid = all_valid && id >= 0 && id < tokenizer.vocab_size();
  }
  fuzz::accept_or_reject([&] { (void)tokenizer.decode(ids, skip_special_tokens); });
  StreamDecoder stream(tokenizer, skip_special_tokens);
  std::string streamed;
  for (int64_t id : ids) streamed += stream.push(id);
  streamed += stream.finish();
  if (all_valid && streamed != tokenizer.decode(ids, skip_special_tokens)) std::abort();
  for (int64_t id : ids) {
    fuzz::accept_or_reject([&] { (void)tokenizer.token_bytes(id); });
  }
  return 0;
}
