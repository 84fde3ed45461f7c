// LearnerLanes: micro-batch ranges spread over the lanes, gradients added in
// micro-batch order whatever runs at once, and a failing lane reported.
#include "learner/learner_lanes.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

namespace r1kit {
namespace {

TEST(LearnerLanes, SpreadSplitsTheLargestRangesUntilEveryLaneHasOne) {
  LearnerLanes lanes(at::kCPU);
  EXPECT_EQ(lanes.size(), std::clamp<int64_t>(at::get_num_threads(), 1, LearnerLanes::kMaxLanes));
  auto plan = lanes.spread({{0, 3}, {3, 64}});
  ASSERT_GE(static_cast<int64_t>(plan.size()), std::min<int64_t>(lanes.size(), 2));
  size_t next = 0;
  for (const auto& [begin, end] : plan) {  // contiguous, in order, none empty
    EXPECT_EQ(begin, next);
    EXPECT_LT(begin, end);
    next = end;
  }
  EXPECT_EQ(next, 64u);
  // A single sample cannot be split.
  EXPECT_EQ(lanes.spread({{5, 6}}).size(), 1u);
  // With a cost, the split evens it out: samples 0..9 cost 1 each, 10..19 cost 9.
  if (lanes.size() == 2) {
    auto cost = [](size_t begin, size_t end) {
      double total = 0;
      for (size_t i = begin; i < end; ++i) total += i < 10 ? 1.0 : 9.0;
      return total;
    };
    const auto weighted = lanes.spread({{0, 20}}, cost);
    ASSERT_EQ(weighted.size(), 2u);
    EXPECT_EQ(weighted[0],
              (std::pair<size_t, size_t>{0, 14}));  // 10 + 36 against 54 (15: 55 against 45)
  }
  EXPECT_EQ(LearnerLanes(at::Device("meta")).size(), 1);
}

// Seven micro-batches of made-up gradients: .grad ends as the left-to-right
// sum, bit for bit, the sum sequential backward passes would accumulate.
TEST(LearnerLanes, GradientsAddUpInMicroBatchOrder) {
  at::manual_seed(11);
  std::vector<at::Tensor> parameters = {at::zeros({5, 3}).requires_grad_(),
                                        at::zeros({4}).requires_grad_()};
  std::vector<std::vector<at::Tensor>> per_batch;
  for (int i = 0; i < 7; ++i) {
    // The second parameter gets no gradient from batch 0 (undefined = unused).
    per_batch.push_back({at::randn({5, 3}) * 1e3, i == 0 ? at::Tensor() : at::randn({4}) * 1e-3});
  }
  LearnerLanes lanes(at::kCPU);
  lanes.run(
      7,
      [&](int64_t i) {
        return std::vector<at::Tensor>{per_batch[i][0].clone(), per_batch[i][1].defined()
                                                                    ? per_batch[i][1].clone()
                                                                    : at::Tensor()};
      },
      parameters);
  at::Tensor first = per_batch[0][0].clone(), second = per_batch[1][1].clone();
  for (int i = 1; i < 7; ++i) first.add_(per_batch[i][0]);
  for (int i = 2; i < 7; ++i) second.add_(per_batch[i][1]);
  EXPECT_TRUE(at::equal(parameters[0].grad(), first));
  EXPECT_TRUE(at::equal(parameters[1].grad(), second));
}

TEST(LearnerLanes, AFailingMicroBatchIsRethrownAfterTheOthersFinish) {
  std::vector<at::Tensor> parameters = {at::zeros({2}).requires_grad_()};
  std::atomic<int> finished{0};
  LearnerLanes lanes(at::kCPU);
  EXPECT_THROW(lanes.run(
                   4,
                   [&](int64_t i) {
                     if (i == 1) throw std::runtime_error("micro-batch 1 failed");
                     ++finished;
                     return std::vector<at::Tensor>{at::ones({2})};
                   },
                   parameters),
               std::runtime_error);
  // Every lane of the failing round ran to its end before the error surfaced.
  EXPECT_GE(finished.load(), static_cast<int>(std::min<int64_t>(lanes.size(), 4)) - 1);
}

// Every lane holds a full set of gradients until it is added in: a model whose
// gradients would not fit twice in the budget gets one lane using every thread.
TEST(LearnerLanes, LargeModelsGetOneLane) {
  const int64_t threads = at::get_num_threads();
  const int64_t lanes = std::min(threads, LearnerLanes::kMaxLanes);
  EXPECT_EQ(LearnerLanes(at::kCPU).size(), lanes);
  EXPECT_EQ(LearnerLanes(at::kCPU, int64_t{4} << 20).size(), lanes);  // a 1M-parameter model
  EXPECT_EQ(LearnerLanes(at::kCPU, LearnerLanes::kLaneGradientBudget).size(), 1);
  EXPECT_EQ(LearnerLanes(at::kCPU, LearnerLanes::kLaneGradientBudget / 2).size(),
            std::min<int64_t>(lanes, 2));
  EXPECT_EQ(LearnerLanes(at::Device(at::kCUDA, 0), 0).size(), 1);
}

}  // namespace
}  // namespace r1kit
