// The optimiser: HF's schedule values at chosen steps, AdamW's first step by
// hand with and without weight decay, global-norm clipping, the NaN/Inf guard
// and its K-in-a-row stop, and bit-exact resume from a saved state.
#include "learner/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "common/error.h"
#include "learner/lr_schedule.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

OptimizerConfig constant_config(double learning_rate) {
  OptimizerConfig config;
  config.learning_rate = learning_rate;
  config.lr_scheduler_type = "constant";
  return config;
}

TEST(LrSchedule, ValuesAtChosenSteps) {
  LrSchedule constant("constant", 2, 10);
  EXPECT_DOUBLE_EQ(constant.multiplier(0), 0.0);
  EXPECT_DOUBLE_EQ(constant.multiplier(1), 0.5);
  EXPECT_DOUBLE_EQ(constant.multiplier(2), 1.0);
  EXPECT_DOUBLE_EQ(constant.multiplier(50), 1.0);

  LrSchedule cosine("cosine", 2, 10);  // progress (step - 2) / 8
  EXPECT_DOUBLE_EQ(cosine.multiplier(1), 0.5);
  EXPECT_DOUBLE_EQ(cosine.multiplier(2), 1.0);
  EXPECT_NEAR(cosine.multiplier(4), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);
  EXPECT_NEAR(cosine.multiplier(6), 0.5, 1e-15);
  EXPECT_NEAR(cosine.multiplier(10), 0.0, 1e-15);
  EXPECT_DOUBLE_EQ(cosine.multiplier(12), 0.0);  // past the end: clamped at 0, never negative

  LrSchedule linear("linear", 2, 10);  // (10 - step) / 8
  EXPECT_DOUBLE_EQ(linear.multiplier(4), 0.75);
  EXPECT_DOUBLE_EQ(linear.multiplier(6), 0.5);
  EXPECT_DOUBLE_EQ(linear.multiplier(10), 0.0);
  EXPECT_DOUBLE_EQ(linear.multiplier(11), 0.0);

  LrSchedule no_warmup("linear", 0, 4);
  EXPECT_DOUBLE_EQ(no_warmup.multiplier(0), 1.0);
  EXPECT_DOUBLE_EQ(no_warmup.multiplier(1), 0.75);
  EXPECT_EQ(LrSchedule("constant_with_warmup", 3, 0).type(), "constant");

  EXPECT_EQ(resolve_warmup_steps(0, 0.1, 15), 2);  // ceil(1.5)
  EXPECT_EQ(resolve_warmup_steps(4, 0.1, 15), 4);  // explicit steps win
  EXPECT_THROW(LrSchedule("cosine", 0, 0), Error);
  EXPECT_THROW(LrSchedule("exponential", 0, 10), Error);
}

TEST(Optimizer, StepUsesTheScheduledRate) {
  at::Tensor p = at::zeros({2}).requires_grad_(true);
  OptimizerConfig config;
  config.learning_rate = 0.1;
  config.lr_scheduler_type = "linear";
  config.warmup_steps = 1;
  Optimizer optimizer({p}, {}, config, 5);
  std::vector<double> rates;
  for (int i = 0; i < 5; ++i) {
    p.mutable_grad() = at::ones({2});
    rates.push_back(optimizer.step().learning_rate);
  }
  // Warm-up step 0 is rate 0 (as HF), then (5 - step) / 4.
  EXPECT_DOUBLE_EQ(rates[0], 0.0);
  EXPECT_DOUBLE_EQ(rates[1], 0.1);
  EXPECT_DOUBLE_EQ(rates[2], 0.1 * 0.75);
  EXPECT_DOUBLE_EQ(rates[4], 0.1 * 0.25);
  EXPECT_EQ(optimizer.step_count(), 5);
}

TEST(Optimizer, FirstAdamWStepByHandWithDecayGroups) {
  // g = 2: m = 0.1 * 2, v = 0.001 * 4; bias-corrected m^ = 2, v^ = 4; update = lr * 2 / (2 + eps).
  // The decay group first shrinks p by (1 - lr * wd).
  at::Tensor decayed = at::ones({1}).requires_grad_(true);
  at::Tensor not_decayed = at::ones({1}).requires_grad_(true);
  OptimizerConfig config = constant_config(0.1);
  config.weight_decay = 0.1;
  config.max_grad_norm = 0.0;
  Optimizer optimizer({decayed}, {not_decayed}, config, 1);
  decayed.mutable_grad() = at::full({1}, 2.0f);
  not_decayed.mutable_grad() = at::full({1}, 2.0f);
  OptimizerStepStats stats = optimizer.step();
  EXPECT_FALSE(stats.skipped);
  EXPECT_NEAR(stats.grad_norm, std::sqrt(8.0), 1e-6);
  const double update = 0.1 * 2.0 / (2.0 + 1e-8);
  EXPECT_NEAR(decayed.item<double>(), 1.0 * (1 - 0.1 * 0.1) - update, 1e-6);
  EXPECT_NEAR(not_decayed.item<double>(), 1.0 - update, 1e-6);
}

TEST(Optimizer, ClipsTheGlobalNorm) {
  at::Tensor a = at::zeros({1}).requires_grad_(true);
  at::Tensor b = at::zeros({1}).requires_grad_(true);
  Optimizer optimizer({a}, {b}, constant_config(0.0), 1);
  a.mutable_grad() = at::full({1}, 3.0f);
  b.mutable_grad() = at::full({1}, 4.0f);
  OptimizerStepStats stats = optimizer.step();
  EXPECT_NEAR(stats.grad_norm, 5.0, 1e-6);  // reported before clipping
  EXPECT_NEAR(a.grad().item<double>(), 0.6, 1e-6);
  EXPECT_NEAR(b.grad().item<double>(), 0.8, 1e-6);
}

TEST(Optimizer, SkipsNonFiniteStepsAndStopsAfterKInARow) {
  at::Tensor p = at::ones({2}).requires_grad_(true);
  OptimizerConfig config = constant_config(0.1);
  config.max_consecutive_nonfinite = 3;
  Optimizer optimizer({p}, {}, config, 10);
  auto nan_step = [&] {
    p.mutable_grad() = at::tensor({1.0f, std::numeric_limits<float>::quiet_NaN()});
    return optimizer.step();
  };
  OptimizerStepStats stats = nan_step();
  EXPECT_TRUE(stats.skipped);
  EXPECT_TRUE(std::isnan(stats.grad_norm));
  EXPECT_TRUE(at::equal(p, at::ones({2})));  // untouched
  EXPECT_FALSE(p.grad().defined());          // gradients dropped
  EXPECT_EQ(optimizer.consecutive_skips(), 1);
  nan_step();
  EXPECT_EQ(optimizer.consecutive_skips(), 2);

  // A finite step resets the streak.
  p.mutable_grad() = at::ones({2});
  EXPECT_FALSE(optimizer.step().skipped);
  EXPECT_EQ(optimizer.consecutive_skips(), 0);
  EXPECT_LT(p[0].item<double>(), 1.0);

  p.mutable_grad() = at::full({2}, std::numeric_limits<float>::infinity());
  EXPECT_TRUE(optimizer.step().skipped);
  nan_step();
  try {
    nan_step();
    FAIL() << "the third non-finite step in a row did not stop the run";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kRuntime);
    EXPECT_NE(std::string(e.what()).find("3 steps in a row"), std::string::npos) << e.what();
  }
}

// A small deterministic problem with two groups: each step's gradient depends
// on the parameters, so any drift in the optimiser state shows.
struct Problem {
  at::Tensor weight = at::linspace(-1.0, 1.0, 12).view({3, 4}).requires_grad_(true);
  at::Tensor bias = at::linspace(0.5, -0.5, 4).requires_grad_(true);
  at::Tensor frozen = at::zeros({2}).requires_grad_(true);  // never gets a gradient: no state

  void compute_gradients(int step) {
    at::Tensor x = at::linspace(-2.0, 2.0, 6).view({2, 3}) * (1.0 + 0.1 * step);
    at::Tensor out = at::matmul(x, weight) + bias;
    (out.sin().square().sum() + weight.pow(4).sum()).backward();
  }
};

OptimizerConfig resume_config() {
  OptimizerConfig config;
  config.learning_rate = 0.05;
  config.weight_decay = 0.01;
  config.lr_scheduler_type = "cosine";
  config.warmup_steps = 2;
  config.max_grad_norm = 0.5;
  return config;
}

TEST(Optimizer, ResumesBitIdentically) {
  const int total = 7, split = 3;
  Problem straight;
  Optimizer straight_optimizer({straight.weight}, {straight.bias, straight.frozen}, resume_config(),
                               total);
  for (int step = 0; step < total; ++step) {
    straight_optimizer.zero_grad();
    straight.compute_gradients(step);
    straight_optimizer.step();
  }

  Problem first;
  Optimizer first_optimizer({first.weight}, {first.bias, first.frozen}, resume_config(), total);
  for (int step = 0; step < split; ++step) {
    first_optimizer.zero_grad();
    first.compute_gradients(step);
    first_optimizer.step();
  }
  const testing::TempFolder temp;
  const std::filesystem::path folder = temp / "optimizer";
  first_optimizer.save(folder);
  EXPECT_TRUE(std::filesystem::exists(folder / "optimizer.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(folder / "optimizer.json"));

  // A fresh process: parameters from the checkpoint, a new optimiser, its state loaded.
  Problem resumed;
  {
    at::NoGradGuard no_grad;
    resumed.weight.copy_(first.weight);
    resumed.bias.copy_(first.bias);
  }
  Optimizer resumed_optimizer({resumed.weight}, {resumed.bias, resumed.frozen}, resume_config(),
                              total);
  resumed_optimizer.load(folder);
  EXPECT_EQ(resumed_optimizer.step_count(), split);
  EXPECT_EQ(resumed_optimizer.next_learning_rate(), first_optimizer.next_learning_rate());
  for (int step = split; step < total; ++step) {
    resumed_optimizer.zero_grad();
    resumed.compute_gradients(step);
    resumed_optimizer.step();
  }
  EXPECT_TRUE(at::equal(resumed.weight, straight.weight));
  EXPECT_TRUE(at::equal(resumed.bias, straight.bias));
  // And the run did move: the comparison is not vacuous.
  EXPECT_FALSE(at::equal(straight.weight, Problem().weight));
}

TEST(Optimizer, LoadRejectsAnotherModel) {
  Problem problem;
  Optimizer optimizer({problem.weight}, {problem.bias}, resume_config(), 4);
  problem.compute_gradients(0);
  optimizer.step();
  const testing::TempFolder temp;
  const std::filesystem::path folder = temp / "optimizer";
  optimizer.save(folder);

  at::Tensor other = at::zeros({4, 3}).requires_grad_(true);
  Optimizer wrong_shape({other}, {problem.bias}, resume_config(), 4);
  try {
    wrong_shape.load(folder);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos) << e.what();
  }
  Optimizer wrong_count({problem.weight, other}, {problem.bias}, resume_config(), 4);
  EXPECT_THROW(wrong_count.load(folder), Error);
  EXPECT_THROW(wrong_count.load(folder / "absent"), Error);
}

}  // namespace
}  // namespace r1kit
