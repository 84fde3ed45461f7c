// Fuzzes the countdown expression parser and check
// (common/arithmetic_expression.h, common/countdown_check.h): the input is an
// expression and, after the first NUL byte, the numbers and target as bytes.
// An accepted expression's literals must be the numbers it was checked with.
#include <vector>

#include "common/arithmetic_expression.h"
#include "common/countdown_check.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace r1kit;
  const std::string_view text = fuzz::as_text(data, size);
  const size_t nul = text.find('\0');
  const std::string_view expression = text.substr(0, nul);
  std::vector<int64_t> numbers = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 25, 50, 75, 100};
  int64_t target = 24;
  if (nul != std::string_view::npos && nul + 1 < text.size()) {
    const std::string_view tail = text.substr(nul + 1);
    target = static_cast<signed char>(tail[0]) * 7;
    numbers.assign(tail.begin() + 1, tail.end());
  }
  fuzz::accept_or_reject([&] { (void)evaluate_expression(expression); });
  const CountdownVerdict verdict = check_countdown(expression, numbers, target);
  if (verdict.correct && !verdict.reason.empty()) std::abort();
  return 0;
}
