#include "learner/micro_batch.h"

#include <algorithm>

namespace r1kit {

namespace {

// The per-target tensors of rows samples[begin, end), `targets` columns wide,
// completion token t of a row in column (prompt_length - 1 + t) when
// `padded_rows`, in column t otherwise.
MicroBatch target_tensors(const std::vector<TrainingSample>& samples, size_t begin, size_t end,
                          int64_t targets, bool padded_rows) {
  const int64_t rows = static_cast<int64_t>(end - begin);
  MicroBatch batch;
  batch.loss_mask = at::zeros({rows, targets}, at::kFloat);
  batch.old_logprobs = at::zeros({rows, targets}, at::kFloat);
  batch.advantages = at::empty({rows}, at::kFloat);
  batch.completion_mask = at::zeros({rows, targets}, at::kFloat);
  const bool per_token = !samples[begin].token_advantages.empty();
  const bool learner_old = std::any_of(
      samples.begin() + begin, samples.begin() + end,
      [](const TrainingSample& sample) { return !sample.learner_old_logprobs.empty(); });
  if (learner_old) batch.learner_old_logprobs = at::zeros({rows, targets}, at::kFloat);
  if (per_token) {
    batch.token_advantages = at::zeros({rows, targets}, at::kFloat);
    batch.returns = at::zeros({rows, targets}, at::kFloat);
    batch.old_values = at::zeros({rows, targets}, at::kFloat);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const TrainingSample& sample = samples[begin + r];
    const int64_t length = static_cast<int64_t>(sample.tokens.size());
    const int64_t completion = length - sample.prompt_length;
    // Position t predicts token t+1: in a padded row the completion's targets start at
    // prompt_length - 1.
    const int64_t first = padded_rows ? sample.prompt_length - 1 : 0;
    if (completion > 0) {
      // Observations (environment-written tokens) leave both masks: no loss, and
      // GAE neither bootstraps nor decays through them.
      at::Tensor completion_targets = batch.completion_mask[r].narrow(0, first, completion);
      completion_targets.fill_(1.0f);
      if (!sample.observation_mask.empty()) {
        TORCH_CHECK(static_cast<int64_t>(sample.observation_mask.size()) == completion,
                    "observation_mask has ", sample.observation_mask.size(), " entries for ",
                    completion, " completion tokens");
        float* mask = completion_targets.data_ptr<float>();
        for (int64_t t = 0; t < completion; ++t) mask[t] = sample.observation_mask[t] ? 0.0f : 1.0f;
      }
      if (sample.in_loss) batch.loss_mask[r].narrow(0, first, completion).copy_(completion_targets);
      std::copy(sample.old_logprobs.begin(), sample.old_logprobs.end(),
                batch.old_logprobs[r].narrow(0, first, completion).data_ptr<float>());
      if (learner_old && !sample.learner_old_logprobs.empty()) {
        TORCH_CHECK(static_cast<int64_t>(sample.learner_old_logprobs.size()) == completion,
                    "learner_old_logprobs has ", sample.learner_old_logprobs.size(),
                    " entries for ", completion, " completion tokens");
        std::copy(sample.learner_old_logprobs.begin(), sample.learner_old_logprobs.end(),
                  batch.learner_old_logprobs[r].narrow(0, first, completion).data_ptr<float>());
      }
      if (per_token && !sample.token_advantages.empty()) {
        auto place = [&](const std::vector<float>& values, at::Tensor& into) {
          std::copy(values.begin(), values.end(),
                    into[r].narrow(0, first, completion).data_ptr<float>());
        };
        place(sample.token_advantages, batch.token_advantages);
        place(sample.returns, batch.returns);
        place(sample.old_values, batch.old_values);
      }
    }
    batch.advantages[r] = sample.advantage;
  }
  return batch;
}

}  // namespace

MicroBatch make_micro_batch(const std::vector<TrainingSample>& samples, size_t begin, size_t end) {
  const int64_t rows = static_cast<int64_t>(end - begin);
  int64_t width = 0;
  for (size_t i = begin; i < end; ++i) width = std::max<int64_t>(width, samples[i].tokens.size());
  MicroBatch batch = target_tensors(samples, begin, end, width - 1, /*padded_rows=*/true);
  batch.tokens = at::zeros({rows, width}, at::kLong);
  batch.attention_mask = at::zeros({rows, width}, at::kLong);
  for (int64_t r = 0; r < rows; ++r) {
    const TrainingSample& sample = samples[begin + r];
    std::copy(sample.tokens.begin(), sample.tokens.end(), batch.tokens[r].data_ptr<int64_t>());
    batch.attention_mask[r].narrow(0, 0, static_cast<int64_t>(sample.tokens.size())).fill_(1);
  }
  return batch;
}

MicroBatch make_completion_micro_batch(const std::vector<TrainingSample>& samples, size_t begin,
                                       size_t end) {
  int64_t width = 1;
  for (size_t i = begin; i < end; ++i)
    width = std::max<int64_t>(
        width, static_cast<int64_t>(samples[i].tokens.size()) - samples[i].prompt_length);
  return target_tensors(samples, begin, end, width, /*padded_rows=*/false);
}

LossNormalizer count_loss_normalizer(const std::vector<TrainingSample>& samples, size_t begin,
                                     size_t end, int64_t max_completion_length) {
  double tokens = 0;
  for (size_t i = begin; i < end; ++i) {
    const TrainingSample& sample = samples[i];
    const int64_t completion = static_cast<int64_t>(sample.tokens.size()) - sample.prompt_length;
    if (!sample.in_loss || completion <= 0) continue;
    // Observations leave the loss mask (target_tensors).
    tokens += static_cast<double>(
        completion - std::count_if(sample.observation_mask.begin(), sample.observation_mask.end(),
                                   [](uint8_t flag) { return flag != 0; }));
  }
  return {tokens, static_cast<double>(end - begin), max_completion_length};
}

std::vector<std::pair<size_t, size_t>> plan_micro_batches(
    const std::vector<TrainingSample>& samples, size_t begin, size_t end, int64_t budget) {
  std::vector<std::pair<size_t, size_t>> plan;
  size_t start = begin;
  int64_t width = 0;
  for (size_t i = begin; i < end; ++i) {
    int64_t next_width = std::max<int64_t>(width, samples[i].tokens.size());
    if (i > start && next_width * static_cast<int64_t>(i - start + 1) > budget) {
      plan.emplace_back(start, i);
      start = i;
      next_width = static_cast<int64_t>(samples[i].tokens.size());
    }
    width = next_width;
  }
  if (start < end) plan.emplace_back(start, end);
  return plan;
}

}  // namespace r1kit
