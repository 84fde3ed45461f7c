// Answers that name more than 64 distinct variables' worth of letters: the
// Greek letters after the 52 Latin ones (\phi, \chi, \psi, \omega) are
// variables 64-67, which once overflowed a 64-bit variable mask and read past
// the evaluation point (found by fuzz/math_equivalence_fuzzer.cpp).
#include <gtest/gtest.h>

#include "rewards/math_equivalence.h"

namespace r1kit {
namespace {

TEST(MathEquivalenceHostileInput, LastGreekLettersAreVariablesOfTheirOwn) {
  for (const char* letter : {"\\phi", "\\chi", "\\psi", "\\omega"}) {
    const std::string x = letter;
    EXPECT_TRUE(math_answers_equal(x, x)) << x;
    EXPECT_TRUE(math_answers_equal("2" + x + "+1", "1+" + x + "+" + x)) << x;
    EXPECT_FALSE(math_answers_equal(x, x + "+1")) << x;
    // Not confused with the Latin letters their ids once wrapped onto.
    for (const char* latin : {"a", "b", "c", "d"}) {
      EXPECT_FALSE(math_answers_equal(x, latin)) << x << " vs " << latin;
      EXPECT_FALSE(math_answers_equal(x + "+" + latin, latin + std::string("+") + latin)) << x;
    }
  }
  EXPECT_FALSE(math_answers_equal("\\phi", "\\psi"));
  EXPECT_TRUE(math_answers_equal("\\chi^2 \\cdot a", "a \\cdot \\chi^{2}"));
}

TEST(MathEquivalenceHostileInput, FuzzFindingComparesWithoutCrashing) {
  // The input that found the overflow: "\chi^i%" against "Orp2".
  EXPECT_FALSE(math_answers_equal("\\chi^i%", "Orp2"));
  EXPECT_FALSE(math_answers_equal("Orp2", "\\chi^i%"));
}

}  // namespace
}  // namespace r1kit
