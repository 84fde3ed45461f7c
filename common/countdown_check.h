// The check of a countdown answer (as in TinyZero): an arithmetic expression
// that equals the target using each given number at most once. Shared by the
// `countdown` environment and the `countdown` reward. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace r1kit {

struct CountdownVerdict {
  bool correct = false;
  std::string reason;  // why not: "uses 7 twice", "evaluates to 23, not 24", a syntax error
};

// Evaluates `expression` exactly (common/arithmetic_expression.h) and checks that
// every literal is one of `numbers`, each used at most once, and that the value
// is `target`.
CountdownVerdict check_countdown(std::string_view expression, const std::vector<int64_t>& numbers,
                                 int64_t target);

}  // namespace r1kit
