// The arithmetic evaluator: exact values, the literals it read, and refusals of
// anything outside its small grammar or its bounds.
#include "common/arithmetic_expression.h"

#include <gtest/gtest.h>

#include <string>

#include "common/error.h"

namespace r1kit {
namespace {

TEST(ArithmeticExpression, EvaluatesExactly) {
  EXPECT_EQ(evaluate_expression("1 + 2 * 3").value, Rational(7));
  EXPECT_EQ(evaluate_expression("(1 + 2) * 3").value, Rational(9));
  EXPECT_EQ(evaluate_expression("1/3 + 1/6").value, *Rational::make(1, 2));
  EXPECT_EQ(evaluate_expression("-2^3").value, Rational(-8));
  EXPECT_EQ(evaluate_expression("2.5 * 4").value, Rational(10));
  EXPECT_EQ(evaluate_expression("3 x 4").value, Rational(12));
}

TEST(ArithmeticExpression, ListsTheLiteralsInOrder) {
  Evaluation evaluation = evaluate_expression("(5-3)*5");
  ASSERT_EQ(evaluation.literals.size(), 3u);
  EXPECT_EQ(evaluation.literals[0], Rational(5));
  EXPECT_EQ(evaluation.literals[1], Rational(3));
  EXPECT_EQ(evaluation.literals[2], Rational(5));
}

TEST(ArithmeticExpression, RefusesAbuseWithADataError) {
  EXPECT_THROW(evaluate_expression("1/0"), Error);
  EXPECT_THROW(evaluate_expression("2^1000"), Error);
  EXPECT_THROW(evaluate_expression("99999999999 * 99999999999"), Error);
  EXPECT_THROW(evaluate_expression(std::string(300, '1')), Error);
  EXPECT_THROW(evaluate_expression(std::string(100, '(') + "1" + std::string(100, ')')), Error);
  EXPECT_THROW(evaluate_expression("2 +"), Error);
  try {
    evaluate_expression("import os");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find("position 0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace r1kit
