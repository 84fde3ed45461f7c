// Deciding whether a predicted final answer states the same mathematics as a
// reference: normalisation of LaTeX and plain text, a small parser (numbers as
// exact rationals, \frac, \sqrt, ^, \pi, variables, tuples, intervals, sets)
// and a strict, asymmetric comparison in the spirit of Hugging Face's
// Math-Verify. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace r1kit {

struct MathCompareOptions {
  // Relative tolerance when either side is not an exact rational (\pi, \sqrt2):
  // |p - r| <= tolerance * |r|; absolute when a written decimal meets an exact
  // number ("4.9999999" for 5). Math-Verify rounds to 6 digits likewise.
  double tolerance = 1e-6;
  // A prediction longer than this (after normalisation) is wrong: no essays.
  size_t max_answer_chars = 256;
};

// The answer with LaTeX spacing, \left/\right, $...$, \dfrac/\tfrac, degrees,
// percent signs, \text{unit} and trailing units, thousands separators and a
// final period removed. Spaces between tokens are kept (they matter: "3 4" is
// not 34).
std::string normalize_math_answer(std::string_view answer);

// True when `prediction` is the same answer as `reference`.
//  - Numbers compare exactly as rationals ("0.5" = "\frac12" = "1/2"); "50\%"
//    reads as 50 (the percent sign is dropped), integers never get a tolerance.
//  - A reference written as a decimal with k places accepts a fraction or
//    irrational prediction that rounds to it ("1/3" for "0.333"), not the
//    other way round: "0.333" is wrong for "\frac13".
//  - Expressions with variables compare by evaluation at fixed points; the
//    variables must be the same.
//  - Tuples and intervals compare in order with the same brackets; sets and
//    bare lists compare as multisets; a single number never equals a list, so
//    listing candidates ("3, 4", "3 or 4") is wrong.
//  - A leading "x =" or "x \in" is dropped on both sides.
//  - What does not parse compares as normalised text with spaces removed.
bool math_answers_equal(std::string_view prediction, std::string_view reference,
                        const MathCompareOptions& options = {});

}  // namespace r1kit
