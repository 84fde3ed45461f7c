// Fuzzes loading a tokenizer folder (policy/tokenizer.h): the input is
// tokenizer.json and tokenizer_config.json joined by a NUL byte. A tokenizer
// that loads then encodes a few texts and decodes its first ids, which runs the
// pre-tokenizer regexes, added tokens and post-processor it was given.
#include <filesystem>

#include "fuzz/fuzz_support.h"
#include "policy/tokenizer.h"

namespace {

constexpr const char* kTexts[] = {
    "What is 2+2? The answer is 4.",
    "  Hello\tworld\n\n<|im_start|>user\n123456 caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80",
    "<s>[INST] x = \\frac{1}{2} [/INST]</s>",
    "\xff\xfe broken \xc3",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  static const bool quiet = (fuzz::quiet_logging(), true);
  (void)quiet;
  const auto parts = fuzz::split_parts(fuzz::as_text(data, size), '\0');
  const auto folder = fuzz::temp_folder() / "tokenizer";
  std::filesystem::create_directories(folder);
  fuzz::write_temp_file("tokenizer/tokenizer.json", parts[0]);
  std::filesystem::remove(folder / "tokenizer_config.json");
  if (parts.size() > 1) fuzz::write_temp_file("tokenizer/tokenizer_config.json", parts[1]);
  fuzz::accept_or_reject([&] {
    const auto tokenizer = load_tokenizer(folder);
    for (const char* text : kTexts) {
      const auto ids = tokenizer->encode(text, /*add_special_tokens=*/true);
      for (int64_t id : ids) {
        if (id < 0 || id >= tokenizer->vocab_size()) std::abort();
      }
      (void)tokenizer->decode(ids, /*skip_special_tokens=*/true);
    }
    const int64_t shown = std::min<int64_t>(tokenizer->vocab_size(), 300);
    for (int64_t id = 0; id < shown; ++id) {
      fuzz::accept_or_reject([&] {
        (void)tokenizer->id_to_token(id);
        (void)tokenizer->decode({id});
      });
    }
  });
  return 0;
}
