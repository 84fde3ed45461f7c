// The reward/value scalar head: names, shapes and the last-real-token read-out.
#include "policy/scalar_head.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace r1kit {
namespace {

TEST(ScalarHead, UsesHuggingFaceAndTrlNames) {
  ScalarHead reward(ScalarHeadKind::kReward, 8);
  const auto reward_names = reward->named_parameters().keys();
  EXPECT_EQ(reward_names, (std::vector<std::string>{"score.weight"}));
  ScalarHead value(ScalarHeadKind::kValue, 8);
  const auto value_names = value->named_parameters().keys();
  EXPECT_EQ(value_names,
            (std::vector<std::string>{"v_head.summary.weight", "v_head.summary.bias"}));
}

TEST(ScalarHead, ReadsTheLastRealTokenOnEitherPaddingSide) {
  ScalarHead head(ScalarHeadKind::kValue, 4);
  const at::Tensor hidden = at::randn({2, 5, 4});
  const at::Tensor mask = at::tensor({1, 1, 1, 0, 0, 0, 0, 1, 1, 1}).view({2, 5});
  const at::Tensor per_token = head->forward(hidden);  // (2, 5)
  const at::Tensor last = head->at_last_token(hidden, mask);
  // The head runs on a (2, 4) gather rather than the (2, 5, 4) whole: MKL may
  // sum in another order (it did under load), so equal within float rounding.
  EXPECT_NEAR(last[0].item<float>(), per_token[0][2].item<float>(), 1e-5);
  EXPECT_NEAR(last[1].item<float>(), per_token[1][4].item<float>(), 1e-5);
}

TEST(ScalarHead, UnknownKindListsTheKnownOnes) {
  EXPECT_EQ(scalar_head_kind_from_name("value"), ScalarHeadKind::kValue);
  try {
    scalar_head_kind_from_name("critic");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(known: reward, value)"), std::string::npos);
  }
}

}  // namespace
}  // namespace r1kit
