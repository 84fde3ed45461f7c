// Fuzzes the comparison of math answers (rewards/math_equivalence.h): the
// input is a prediction and a reference split at the first NUL byte (or, with
// none, the input against itself). Normalisation and both directions of the
// comparison run; a nonsense answer must never crash or hang them.
#include "fuzz/fuzz_support.h"
#include "rewards/answer_extraction.h"
#include "rewards/math_equivalence.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  const std::string_view text = fuzz::as_text(data, size);
  const size_t nul = text.find('\0');
  const std::string_view prediction = text.substr(0, nul);
  const std::string_view reference = nul == std::string_view::npos ? text : text.substr(nul + 1);
  (void)normalize_math_answer(prediction);
  (void)math_answers_equal(prediction, reference);
  (void)math_answers_equal(reference, prediction);
  MathCompareOptions loose;
  loose.tolerance = 1e-2;
  loose.max_answer_chars = 4096;
  (void)math_answers_equal(prediction, reference, loose);
  if (auto boxed = last_boxed(prediction)) (void)math_answers_equal(*boxed, reference);
  return 0;
}
