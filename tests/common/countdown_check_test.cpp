// The countdown answer check: each given number at most once, the exact value
// equal to the target, and a reason when not.
#include "common/countdown_check.h"

#include <gtest/gtest.h>

namespace r1kit {
namespace {

TEST(CountdownCheck, AcceptsExactAnswersThatUseTheNumbersOnce) {
  EXPECT_TRUE(check_countdown("(25 - 1) * 1", {25, 1, 1}, 24).correct);
  EXPECT_TRUE(check_countdown("3 / (1 - 7/8)", {3, 1, 7, 8}, 24).correct);  // exact rationals
  EXPECT_EQ(check_countdown("(25 - 1) * 1", {25, 1, 1}, 24).reason, "");
}

TEST(CountdownCheck, SaysWhyAnAnswerIsWrong) {
  EXPECT_EQ(check_countdown("(25 - 1) * 1", {25, 1, 7}, 24).reason, "uses 1 too often");
  EXPECT_EQ(check_countdown("24", {25, 1}, 24).reason, "24 is not given");
  EXPECT_EQ(check_countdown("25 - 2", {25, 2}, 24).reason, "evaluates to 23, not 24");
  EXPECT_FALSE(check_countdown("25 - 1; rm -rf /", {25, 1}, 24).correct);
  CountdownVerdict division = check_countdown("1/0", {1, 0}, 24);
  EXPECT_FALSE(division.correct);
  EXPECT_NE(division.reason.find("division by zero"), std::string::npos) << division.reason;
}

}  // namespace
}  // namespace r1kit
