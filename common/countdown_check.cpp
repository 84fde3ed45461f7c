#include "common/countdown_check.h"

#include <algorithm>

#include "common/arithmetic_expression.h"
#include "common/error.h"

namespace r1kit {

CountdownVerdict check_countdown(std::string_view expression, const std::vector<int64_t>& numbers,
                                 int64_t target) {
  Evaluation evaluation;
  try {
    evaluation = evaluate_expression(expression);
  } catch (const Error& e) {
    return {false, e.what()};
  }
  std::vector<int64_t> unused = numbers;
  for (const Rational& literal : evaluation.literals) {
    auto it = literal.is_integer() ? std::find(unused.begin(), unused.end(), literal.num())
                                   : unused.end();
    if (it == unused.end()) {
      bool given =
          literal.is_integer() && std::count(numbers.begin(), numbers.end(), literal.num()) > 0;
      return {false, given ? "uses " + literal.to_string() + " too often"
                           : literal.to_string() + " is not given"};
    }
    unused.erase(it);
  }
  if (!(evaluation.value == Rational(target))) {
    return {false,
            "evaluates to " + evaluation.value.to_string() + ", not " + std::to_string(target)};
  }
  return {true, ""};
}

}  // namespace r1kit
