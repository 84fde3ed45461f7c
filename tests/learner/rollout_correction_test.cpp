// The rollout correction against plain re-computations, element by element:
// token and sequence weights under tis and mask, the masked fraction, the k3 KL
// and verl's perplexity ratio, micro-batch sums adding up; mode none leaves the
// policy loss exactly as without it; the recipe keys and their errors; and end
// to end, a bfloat16 rollout engine shows a KL far above the float32 engine's,
// with tis capping the weights the loss uses.
#include "learner/rollout_correction.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <vector>

#include "common/config.h"
#include "common/error.h"
#include "learner/grpo_config.h"
#include "learner/policy_loss.h"
#include "learner/step_metrics.h"
#include "rollout/rollout_dtype.h"
#include "tests/learner/grpo_section.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

// Two rows of four tokens; row 1's last token is padding.
struct Example {
  at::Tensor learner =
      at::tensor({-1.0f, -2.0f, -0.5f, -3.0f, -1.2f, -0.1f, -2.5f, -9.0f}).view({2, 4});
  at::Tensor rollout =
      at::tensor({-1.1f, -1.0f, -0.5f, -4.5f, -1.0f, -0.3f, -2.4f, -1.0f}).view({2, 4});
  at::Tensor mask = at::tensor({1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f}).view({2, 4});
};

float at2(const at::Tensor& tensor, int64_t row, int64_t col) {
  return tensor[row][col].item<float>();
}

// The plain weights of one example: w per token, or the row's geometric mean.
std::vector<std::vector<double>> plain_weights(const Example& e, bool sequence) {
  std::vector<std::vector<double>> w(2, std::vector<double>(4, 0.0));
  for (int64_t r = 0; r < 2; ++r) {
    double sum = 0, count = 0;
    for (int64_t t = 0; t < 4; ++t) {
      if (at2(e.mask, r, t) == 0) continue;
      sum += double(at2(e.learner, r, t)) - double(at2(e.rollout, r, t));
      ++count;
    }
    for (int64_t t = 0; t < 4; ++t) {
      const double log_w =
          sequence ? sum / count : double(at2(e.learner, r, t)) - double(at2(e.rollout, r, t));
      w[r][t] = std::exp(log_w);
    }
  }
  return w;
}

RolloutCorrectionConfig config_of(const std::string& mode, const std::string& level, double cap) {
  RolloutCorrectionConfig config;
  config.mode = mode;
  config.level = level;
  config.cap = cap;
  return config;
}

TEST(RolloutCorrection, TruncatedAndMaskedWeightsAtTokenAndSequenceLevel) {
  const Example e;
  for (const std::string level : {"token", "sequence"}) {
    const auto w = plain_weights(e, level == "sequence");
    for (const std::string mode : {"tis", "mask"}) {
      const double cap = 1.5;
      const RolloutCorrection out =
          rollout_correction(e.learner, e.rollout, e.mask, config_of(mode, level, cap));
      ASSERT_TRUE(out.weights.defined());
      EXPECT_FALSE(out.weights.requires_grad());
      double masked = 0, used_max = 0, raw_max = 0;
      for (int64_t r = 0; r < 2; ++r) {
        for (int64_t t = 0; t < 4; ++t) {
          const bool in_loss = at2(e.mask, r, t) != 0;
          const bool keep = w[r][t] >= 1.0 / cap && w[r][t] <= cap;
          double expected = mode == "tis" ? std::min(w[r][t], cap) : (keep ? 1.0 : 0.0);
          if (!in_loss) expected = 0.0;
          EXPECT_NEAR(at2(out.weights, r, t), expected, 1e-6)
              << mode << " " << level << " at " << r << "," << t;
          if (!in_loss) continue;
          raw_max = std::max(raw_max, w[r][t]);
          if (mode == "tis") used_max = std::max(used_max, std::min(w[r][t], cap));
          if (mode == "mask" && keep) used_max = std::max(used_max, w[r][t]);
          if (mode == "mask" && !keep) ++masked;
        }
      }
      const RolloutCorrectionSums sums = rollout_correction_sums(out.totals);
      EXPECT_EQ(sums.tokens, 7.0);
      EXPECT_EQ(sums.masked, masked) << mode << " " << level;
      EXPECT_NEAR(sums.weight_max, used_max, 1e-6) << mode << " " << level;
      EXPECT_NEAR(sums.weight_max_raw, raw_max, 1e-6) << mode << " " << level;
      if (mode == "tis") EXPECT_LE(sums.weight_max, cap);
    }
  }
  // Token level drops on both sides of the band: exp(-1) < 1/1.5 and exp(1.5) > 1.5.
  const RolloutCorrectionSums token_mask = rollout_correction_sums(
      rollout_correction(e.learner, e.rollout, e.mask, config_of("mask", "token", 1.5)).totals);
  EXPECT_EQ(token_mask.masked, 2.0);  // exp(-1) and exp(1.5) leave [1/1.5, 1.5]
}

TEST(RolloutCorrection, KlAndPerplexityRatioMatchVerl) {
  const Example e;
  double kl = 0, ppl_ratio = 0;
  for (int64_t r = 0; r < 2; ++r) {
    double learner_sum = 0, rollout_sum = 0, count = 0;
    for (int64_t t = 0; t < 4; ++t) {
      if (at2(e.mask, r, t) == 0) continue;
      const double d = double(at2(e.learner, r, t)) - double(at2(e.rollout, r, t));
      kl += std::exp(d) - d - 1.0;  // k3 with log(pi_learner / pi_rollout)
      learner_sum += at2(e.learner, r, t);
      rollout_sum += at2(e.rollout, r, t);
      ++count;
    }
    // training_ppl / rollout_ppl of the row, then the mean over rows.
    ppl_ratio += std::exp(-learner_sum / count) / std::exp(-rollout_sum / count);
  }
  for (const std::string mode : {"none", "tis", "mask"}) {
    const RolloutCorrection out =
        rollout_correction(e.learner, e.rollout, e.mask, config_of(mode, "token", 2.0));
    EXPECT_EQ(out.weights.defined(), mode != "none");
    StepMetrics metrics;
    rollout_correction_sums(out.totals).write(metrics);
    EXPECT_NEAR(metrics.get("rollout_corr/kl"), kl / 7.0, 1e-9) << mode;
    EXPECT_NEAR(metrics.get("rollout_corr/ppl_ratio"), ppl_ratio / 2.0, 1e-9) << mode;
    EXPECT_EQ(metrics.get("rollout_corr/masked_fraction"), mode == "mask" ? 2.0 / 7.0 : 0.0)
        << mode;  // exp(-1) and exp(1.5) leave [0.5, 2]
  }
}

TEST(RolloutCorrection, MicroBatchSumsAddUpToTheWholeBatch) {
  at::manual_seed(3);
  const at::Tensor learner = -at::rand({6, 5}) * 3.0;
  const at::Tensor rollout = learner + 0.4 * at::randn({6, 5});
  at::Tensor mask = (at::rand({6, 5}) > 0.3).to(at::kFloat);
  mask[2].zero_();  // a row out of the loss counts no sequence
  for (const std::string level : {"token", "sequence"}) {
    const RolloutCorrectionConfig config = config_of("mask", level, 1.1);
    RolloutCorrectionSums whole =
        rollout_correction_sums(rollout_correction(learner, rollout, mask, config).totals);
    RolloutCorrectionSums parts;
    for (const auto& [begin, count] : {std::pair<int64_t, int64_t>{0, 2}, {2, 3}, {5, 1}}) {
      parts += rollout_correction_sums(rollout_correction(learner.narrow(0, begin, count),
                                                          rollout.narrow(0, begin, count),
                                                          mask.narrow(0, begin, count), config)
                                           .totals);
    }
    EXPECT_DOUBLE_EQ(parts.tokens, whole.tokens);
    EXPECT_NEAR(parts.kl, whole.kl, 1e-12);
    EXPECT_EQ(parts.sequences, 5.0);
    EXPECT_EQ(whole.sequences, 5.0);
    EXPECT_NEAR(parts.ppl_ratio, whole.ppl_ratio, 1e-12);
    EXPECT_EQ(parts.masked, whole.masked);
    EXPECT_GT(whole.masked, 0.0) << level;
    EXPECT_EQ(parts.weight_max, whole.weight_max);
    EXPECT_EQ(parts.weight_max_raw, whole.weight_max_raw);
  }
}

// Inputs where the learner's pi_old differs from the rollout's log-probs: row 0
// by +0.5 at every token (weight 1.65 at both levels), row 1 on both sides with
// a sequence mean near 0, row 2 little.
PolicyLossInputs mismatched_inputs() {
  at::manual_seed(5);
  PolicyLossInputs in;
  in.old_logprobs = -at::rand({3, 4}) * 2.0;  // the rollout's
  const at::Tensor gap =
      at::tensor({0.5f, 0.5f, 0.5f, 0.5f, -0.2f, 0.1f, 0.6f, -0.4f, 0.05f, -0.05f, 0.1f, 0.0f})
          .view({3, 4});
  in.learner_old_logprobs = in.old_logprobs + gap;  // the learner's
  in.logprobs = (in.learner_old_logprobs + 0.1 * at::randn({3, 4})).requires_grad_(true);
  in.advantages = at::tensor({1.0f, -1.0f, 0.5f});
  in.mask = at::ones({3, 4});
  in.mask[2][3] = 0.0f;
  return in;
}

// The clipped surrogate, written out: -min(r A, clip(r) A), dual clip for A < 0.
at::Tensor plain_surrogate(const at::Tensor& logp, const at::Tensor& old,
                           const at::Tensor& advantages, const GrpoConfig& config) {
  const at::Tensor a = advantages.unsqueeze(1);
  const at::Tensor r = (logp - old).clamp(-20.0, 20.0).exp();
  at::Tensor loss =
      at::maximum(-a * r, -a * r.clamp(1 - config.epsilon, 1 + config.effective_epsilon_high()));
  return at::where(a < 0, at::minimum(loss, -a * config.clip_ratio_c), loss);
}

TEST(RolloutCorrection, ModeNoneLeavesTheLossAsTheRolloutRatioGivesIt) {
  GrpoConfig config;
  config.clip_ratio_c = 3.0;
  PolicyLossInputs in = mismatched_inputs();
  const LossNormalizer normalizer = count_loss_normalizer(in.mask, 4);
  PolicyLossOutput with = policy_loss(in, config, normalizer);
  with.loss.backward();
  const at::Tensor grad_with = in.logprobs.grad().clone();
  in.logprobs.grad().zero_();
  PolicyLossInputs without = in;
  without.learner_old_logprobs = at::Tensor();
  PolicyLossOutput plain = policy_loss(without, config, normalizer);
  plain.loss.backward();
  EXPECT_TRUE(at::equal(with.loss, plain.loss));
  EXPECT_TRUE(at::equal(grad_with, in.logprobs.grad()));
  // ... and that loss is today's: the surrogate against the rollout's log-probs.
  const at::Tensor expected =
      (plain_surrogate(in.logprobs.detach(), in.old_logprobs, in.advantages, config) * in.mask)
          .sum() /
      normalizer.tokens;
  // The same operations in the same order: the same bits.
  EXPECT_EQ(plain.loss.item<float>(), expected.item<float>());
  // The metrics still measure the gap.
  EXPECT_GT(with.rollout.kl, 0.0);
  EXPECT_EQ(with.rollout.masked, 0.0);
}

TEST(RolloutCorrection, TisAndMaskWeighTheDecoupledSurrogate) {
  for (const std::string mode : {"tis", "mask"}) {
    for (const std::string level : {"token", "sequence"}) {
      GrpoConfig config;
      config.rollout_correction = config_of(mode, level, 1.4);
      PolicyLossInputs in = mismatched_inputs();
      const LossNormalizer normalizer = count_loss_normalizer(in.mask, 4);
      PolicyLossOutput out = policy_loss(in, config, normalizer);
      out.loss.backward();

      // Plain: the ratio against the learner's pi_old, times the detached weight.
      const at::Tensor weights = rollout_correction(in.learner_old_logprobs, in.old_logprobs,
                                                    in.mask, config.rollout_correction)
                                     .weights;
      at::Tensor logp = in.logprobs.detach().clone().requires_grad_(true);
      at::Tensor loss = (plain_surrogate(logp, in.learner_old_logprobs, in.advantages, config) *
                         weights * in.mask)
                            .sum() /
                        normalizer.tokens;
      loss.backward();
      EXPECT_NEAR(out.loss.item<double>(), loss.item<double>(), 1e-6) << mode << " " << level;
      EXPECT_TRUE(at::allclose(in.logprobs.grad(), logp.grad(), 1e-5, 1e-7))
          << mode << " " << level;
      // The ratio is against the learner's log-probs, not the rollout's.
      const double ratio_sum =
          ((in.logprobs.detach() - in.learner_old_logprobs).exp() * in.mask).sum().item<double>();
      EXPECT_NEAR(out.ratio_mean, ratio_sum / 11.0, 1e-5);
      if (mode == "mask") EXPECT_GT(out.rollout.masked, 0.0) << level;
      if (mode == "tis") EXPECT_LE(out.rollout.weight_max, 1.4);
      EXPECT_GT(out.rollout.weight_max_raw, 1.4) << mode << " " << level;
    }
  }
}

using testing::grpo_error;
using testing::read_grpo;

TEST(RolloutCorrection, RecipeKeysAndTheirErrors) {
  const GrpoConfig defaults = read_grpo(nlohmann::json::object());
  EXPECT_EQ(defaults.rollout_correction.mode, "auto");  // settled by parse_recipe
  EXPECT_FALSE(defaults.rollout_correction.enabled());
  EXPECT_EQ(defaults.rollout_correction.level, "token");
  EXPECT_EQ(defaults.rollout_correction.cap, 2.0);
  const GrpoConfig set =
      read_grpo({{"rollout_correction", {{"mode", "mask"}, {"level", "sequence"}, {"cap", 3.0}}}});
  EXPECT_TRUE(set.rollout_correction.enabled());
  EXPECT_EQ(set.rollout_correction.level, "sequence");
  EXPECT_EQ(set.rollout_correction.cap, 3.0);

  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"mode", "clip"}, {"level", "row"}, {"cap", 1.0}, {"cap", 0.5}, {"threshold", 2.0}}) {
    const std::string error = grpo_error({{"rollout_correction", {{key, value}}}});
    EXPECT_TRUE(error.starts_with("recipe.json: grpo.rollout_correction." + key + ": ")) << error;
  }
}

// A recipe settles "auto" when it loads: the rollout dtype from the machine
// (bfloat16 where it is the fast path), the correction from the rollouts
// (tis when they run in bfloat16 or asynchronously).
TEST(RolloutCorrection, AutoIsTisForBfloat16OrAsynchronousRollouts) {
  auto settled = [](const nlohmann::json& trainer, const nlohmann::json& grpo) {
    const nlohmann::json json = {
        {"stage", "grpo"}, {"model", {{"device", "cpu"}}}, {"trainer", trainer}, {"grpo", grpo}};
    return parse_recipe(json, "recipe.json", "recipe");
  };
  const Recipe automatic = settled(nlohmann::json::object(), nlohmann::json::object());
  EXPECT_EQ(automatic.trainer.rollout_dtype,
            fast_bfloat16_rollouts(at::kCPU) ? "bfloat16" : "float32");
  EXPECT_EQ(automatic.grpo.rollout_correction.mode,
            automatic.trainer.rollout_dtype == "bfloat16" ? "tis" : "none");
  EXPECT_EQ(settled({{"rollout_dtype", "float32"}}, nlohmann::json::object())
                .grpo.rollout_correction.mode,
            "none");
  EXPECT_EQ(settled({{"rollout_dtype", "bfloat16"}}, nlohmann::json::object())
                .grpo.rollout_correction.mode,
            "tis");
  EXPECT_EQ(settled({{"rollout_dtype", "float32"}, {"max_staleness", 1}}, nlohmann::json::object())
                .grpo.rollout_correction.mode,
            "tis");
  EXPECT_EQ(settled({{"rollout_dtype", "bfloat16"}}, {{"rollout_correction", {{"mode", "none"}}}})
                .grpo.rollout_correction.mode,
            "none")
      << "an explicit mode stays";
}

namespace fs = std::filesystem;

// One GRPO step of the tiny policy with the rollout engine in `rollout_dtype`.
nlohmann::json first_step(const fs::path& root, const std::string& name,
                          const std::string& rollout_dtype, const nlohmann::json& correction,
                          int64_t num_iterations = 1) {
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / name);
  json["trainer"]["rollout_dtype"] = rollout_dtype;
  json["grpo"]["skip_zero_advantage"] = false;  // every completion measured
  json["grpo"]["num_iterations"] = num_iterations;
  json["grpo"]["rollout_correction"] = correction;
  fs::create_directories(root / name);
  testing::TrainerOnRecipe run(json, root / name);
  return run.trainer.step(1);
}

TEST(RolloutCorrection, Bfloat16RolloutsShowTheGapAndTisCapsTheirWeights) {
  const testing::TempFolder root;
  const nlohmann::json f32 = first_step(root.path(), "f32", "float32", {{"mode", "none"}});
  const nlohmann::json bf16 = first_step(root.path(), "bf16", "bfloat16", {{"mode", "none"}});
  const double kl32 = f32["rollout_corr/kl"].get<double>();
  const double kl16 = bf16["rollout_corr/kl"].get<double>();
  std::cout << "rollout_corr/kl float32 " << kl32 << ", bfloat16 " << kl16 << "; weight_max "
            << f32["rollout_corr/weight_max"] << " vs " << bf16["rollout_corr/weight_max"]
            << "; ppl_ratio " << f32["rollout_corr/ppl_ratio"] << " vs "
            << bf16["rollout_corr/ppl_ratio"] << "\n";
  // Measured on the tiny policy: 1.3e-7 against 1e-14.
  EXPECT_GT(kl16, 1e-8);
  EXPECT_GT(kl16, 1000.0 * kl32);
  EXPECT_NEAR(f32["rollout_corr/ppl_ratio"].get<double>(), 1.0, 1e-4);
  EXPECT_EQ(bf16["rollout_corr/masked_fraction"].get<double>(), 0.0);

  // tis with a cap the bfloat16 weights exceed: the loss uses them truncated.
  const double cap = 1.0 + 0.5 * (bf16["rollout_corr/weight_max"].get<double>() - 1.0);
  ASSERT_GT(cap, 1.0);
  const nlohmann::json tis =
      first_step(root.path(), "tis", "bfloat16", {{"mode", "tis"}, {"cap", cap}});
  EXPECT_NEAR(tis["rollout_corr/kl"].get<double>(), kl16, 1e-12);  // same rollout, same pi_old
  EXPECT_GT(tis["rollout_corr/weight_max_raw"].get<double>(), cap);
  EXPECT_LE(tis["rollout_corr/weight_max"].get<double>(), cap);
  EXPECT_NEAR(tis["rollout_corr/weight_max"].get<double>(), cap, 1e-12);
  // mask with that cap drops the tokens beyond it.
  const nlohmann::json mask =
      first_step(root.path(), "mask", "bfloat16", {{"mode", "mask"}, {"cap", cap}});
  EXPECT_GT(mask["rollout_corr/masked_fraction"].get<double>(), 0.0);
  EXPECT_LE(mask["rollout_corr/weight_max"].get<double>(), cap);
}

// With two epochs pi_old comes from one extra forward before the first step;
// against a float32 rollout engine it is the same policy, so the weights stay
// at 1 and the KL near 0 (a misplaced log-prob would show at once).
TEST(RolloutCorrection, RecomputedLearnerLogprobsMatchAFloat32Rollout) {
  const testing::TempFolder root;
  const nlohmann::json line =
      first_step(root.path(), "two_epochs", "float32", {{"mode", "tis"}, {"level", "token"}}, 2);
  EXPECT_LT(line["rollout_corr/kl"].get<double>(), 1e-8) << line.dump();
  EXPECT_NEAR(line["rollout_corr/weight_max_raw"].get<double>(), 1.0, 1e-3) << line.dump();
  EXPECT_NEAR(line["rollout_corr/ppl_ratio"].get<double>(), 1.0, 1e-4) << line.dump();
  EXPECT_GT(line["grad_norm"].get<double>(), 0.0);
  const nlohmann::json bf16 = first_step(root.path(), "two_epochs_bf16", "bfloat16",
                                         {{"mode", "tis"}, {"level", "sequence"}}, 2);
  EXPECT_GT(bf16["rollout_corr/kl"].get<double>(), 1e-8) << bf16.dump();
}

}  // namespace
}  // namespace r1kit
