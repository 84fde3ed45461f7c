// A small, safe evaluator of arithmetic expressions with exact rationals, shared
// by the countdown and calculator environments and the countdown reward:
// + - * / ^ (integer exponents), parentheses, unary minus, integer and decimal
// literals; nothing else. Bounded in length, depth and magnitude, so a model
// cannot make it hang. Pure; thread-safe.
#pragma once

#include <string_view>
#include <vector>

#include "common/rational.h"

namespace r1kit {

struct Evaluation {
  Rational value;
  std::vector<Rational> literals;  // the numbers written, in order ("(5-3)*5" -> 5, 3, 5)
};

// Throws r1kit::Error (kData) saying what is wrong: a syntax error with its
// position, division by zero, overflow, more than 256 characters.
Evaluation evaluate_expression(std::string_view text);

}  // namespace r1kit
