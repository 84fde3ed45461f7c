// Learner micro-batches: the loss normaliser counted from the samples equals
// the count over make_micro_batch's loss mask (observations, truncations out
// of the loss, empty completions), and the completion-aligned tensors are the
// padded ones shifted to each row's first completion token.
#include "learner/micro_batch.h"

#include <gtest/gtest.h>

namespace r1kit {
namespace {

std::vector<TrainingSample> mixed_samples() {
  std::vector<TrainingSample> samples(4);
  samples[0].tokens = {5, 6, 7, 10, 11, 12, 13, 14, 15};  // observations in the completion
  samples[0].prompt_length = 3;
  samples[0].observation_mask = {0, 1, 1, 0, 0, 1};
  samples[1].tokens = {5, 6, 20, 21};  // out of the loss (a masked truncation)
  samples[1].prompt_length = 2;
  samples[1].in_loss = false;
  samples[2].tokens = {5, 6, 7, 8};  // no completion
  samples[2].prompt_length = 4;
  samples[3].tokens = {9, 30, 31, 32, 33};
  samples[3].prompt_length = 1;
  for (auto& sample : samples) {
    const size_t completion = sample.tokens.size() - static_cast<size_t>(sample.prompt_length);
    for (size_t t = 0; t < completion; ++t)
      sample.old_logprobs.push_back(-0.1f * static_cast<float>(t + 1));
  }
  return samples;
}

TEST(MicroBatch, SampleCountsEqualTheLossMaskCounts) {
  const auto samples = mixed_samples();
  for (size_t end = 1; end <= samples.size(); ++end) {
    const LossNormalizer from_mask =
        count_loss_normalizer(make_micro_batch(samples, 0, end).loss_mask, 7);
    const LossNormalizer from_samples = count_loss_normalizer(samples, 0, end, 7);
    EXPECT_EQ(from_samples.tokens, from_mask.tokens) << end;
    EXPECT_EQ(from_samples.sequences, from_mask.sequences) << end;
    EXPECT_EQ(from_samples.max_completion_length, 7);
  }
  EXPECT_EQ(count_loss_normalizer(samples, 0, samples.size(), 7).tokens, 3 + 0 + 0 + 4);
}

TEST(MicroBatch, CompletionAlignedTensorsAreThePaddedOnesShifted) {
  const auto samples = mixed_samples();
  const MicroBatch padded = make_micro_batch(samples, 0, samples.size());
  const MicroBatch aligned = make_completion_micro_batch(samples, 0, samples.size());
  EXPECT_FALSE(aligned.tokens.defined());
  ASSERT_EQ(aligned.loss_mask.size(1), 6);  // the longest completion
  for (size_t r = 0; r < samples.size(); ++r) {
    const int64_t row = static_cast<int64_t>(r);
    const int64_t completion =
        static_cast<int64_t>(samples[r].tokens.size()) - samples[r].prompt_length;
    if (completion == 0) {
      EXPECT_EQ(aligned.completion_mask[row].sum().item<float>(), 0.0f);
      continue;
    }
    const int64_t first = samples[r].prompt_length - 1;
    for (const auto& [name, a, b] :
         {std::tuple{"loss_mask", aligned.loss_mask, padded.loss_mask},
          std::tuple{"old_logprobs", aligned.old_logprobs, padded.old_logprobs},
          std::tuple{"completion_mask", aligned.completion_mask, padded.completion_mask}}) {
      EXPECT_TRUE(at::equal(a[row].narrow(0, 0, completion), b[row].narrow(0, first, completion)))
          << name << " row " << r;
    }
  }
  EXPECT_TRUE(at::equal(aligned.advantages, padded.advantages));
}

}  // namespace
}  // namespace r1kit
