// Fuzzes finding the final answer in a completion (rewards/answer_extraction.h):
// the first input byte turns the forms on and off and sets the searched tail,
// the rest is the completion. An answer found must be trimmed.
#include "fuzz/fuzz_support.h"
#include "rewards/answer_extraction.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  const std::string_view completion = fuzz::as_text(data + 1, size - 1);
  AnswerExtraction how;
  how.boxed = flags & 0x01;
  how.answer_tag = flags & 0x02;
  how.hashes = flags & 0x04;
  how.answer_is = flags & 0x08;
  how.tail_chars = (flags >> 4) * 7;  // 0 = all
  if (auto answer = extract_final_answer(completion, how)) {
    if (trim(answer->text) != answer->text) std::abort();
  }
  (void)extract_final_answer(completion);
  (void)last_boxed(completion);
  (void)trim(completion);
  return 0;
}
