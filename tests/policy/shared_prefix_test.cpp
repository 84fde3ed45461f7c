// The shared-prompt learner forward (policy/shared_prefix.h) against the plain
// padded forward, one row per completion, on both tiny fixture models (GQA,
// Llama 3 RoPE scaling, Qwen2 biases, tied head): the same logits at every
// completion target and the same parameter gradients, for groups of unequal
// prompt and completion lengths.
#include "policy/shared_prefix.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "policy/checkpoint.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

using testing::fixture_path;
using testing::kFixtureModels;

// Two prompts (lengths 5 and 3), three then two completions of lengths 1..6,
// and a last row whose prompt equals the first group's but is not next to it
// (so it gets its own copy).
std::vector<std::vector<int64_t>> rows_tokens() {
  return {{11, 12, 13, 14, 15, 40, 41, 42, 43},
          {11, 12, 13, 14, 15, 50},
          {11, 12, 13, 14, 15, 60, 61, 62, 63, 64, 65},
          {21, 22, 23, 70, 71},
          {21, 22, 23, 80, 81, 82, 83},
          {11, 12, 13, 14, 15, 90, 91}};
}
const std::vector<int64_t> kPromptLengths = {5, 5, 5, 3, 3, 5};

std::vector<PromptAndCompletion> as_rows(const std::vector<std::vector<int64_t>>& tokens) {
  std::vector<PromptAndCompletion> rows;
  for (size_t i = 0; i < tokens.size(); ++i) rows.push_back({tokens[i], kPromptLengths[i]});
  return rows;
}

// The padded forward's logits at each completion target: (B, C, V), zeros at padding.
at::Tensor padded_target_logits(Transformer& model, const std::vector<std::vector<int64_t>>& tokens,
                                int64_t width) {
  const int64_t rows = static_cast<int64_t>(tokens.size());
  int64_t length = 0;
  for (const auto& row : tokens) length = std::max<int64_t>(length, row.size());
  at::Tensor ids = at::zeros({rows, length}, at::kLong),
             mask = at::zeros({rows, length}, at::kLong);
  for (int64_t b = 0; b < rows; ++b) {
    for (size_t t = 0; t < tokens[b].size(); ++t) ids[b][t] = tokens[b][t];
    mask[b].narrow(0, 0, static_cast<int64_t>(tokens[b].size())).fill_(1);
  }
  const at::Tensor logits = model->forward(ids, mask);  // (B, L, V)
  std::vector<at::Tensor> per_row;
  for (int64_t b = 0; b < rows; ++b) {
    const int64_t completion = static_cast<int64_t>(tokens[b].size()) - kPromptLengths[b];
    at::Tensor row = logits[b].narrow(0, kPromptLengths[b] - 1, completion);
    per_row.push_back(at::constant_pad_nd(row, {0, 0, 0, width - completion}));
  }
  return at::stack(per_row);
}

class SharedPrefixParity : public ::testing::TestWithParam<const char*> {};

TEST_P(SharedPrefixParity, LogitsEqualThePaddedForwardAtEveryTarget) {
  Transformer model = load_pretrained(fixture_path(GetParam()));
  at::NoGradGuard no_grad;
  const auto tokens = rows_tokens();
  const SharedPrefixBatch batch = make_shared_prefix_batch(as_rows(tokens));
  EXPECT_EQ(batch.groups, 3);  // the last row's prompt is a new group: it is not next to its twin
  const at::Tensor shared = shared_prefix_logits(*model, batch);
  const at::Tensor padded = padded_target_logits(model, tokens, shared.size(1));
  ASSERT_EQ(shared.sizes(), padded.sizes());
  const at::Tensor real = batch.completion_mask.to(at::kBool);
  EXPECT_LT((shared - padded).abs().index({real}).max().item<double>(), 2e-5);
  // The targets are the completion tokens.
  EXPECT_EQ(batch.targets[0][3].item<int64_t>(), 43);
  EXPECT_EQ(batch.targets[1][0].item<int64_t>(), 50);
  EXPECT_EQ(batch.completion_mask.sum().item<double>(), 4 + 1 + 6 + 2 + 4 + 2);
}

TEST_P(SharedPrefixParity, GradientsEqualThePaddedForward) {
  const auto tokens = rows_tokens();
  const SharedPrefixBatch batch = make_shared_prefix_batch(as_rows(tokens));
  const at::Tensor weights = at::randn(batch.targets.sizes()) * batch.completion_mask;
  auto gradients_of = [&](bool shared) {
    Transformer model = load_pretrained(fixture_path(GetParam()));
    at::Tensor logits = shared ? shared_prefix_logits(*model, batch)
                               : padded_target_logits(model, tokens, batch.targets.size(1));
    const at::Tensor logprobs =
        logits.log_softmax(-1).gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1);
    (logprobs * weights).sum().backward();
    std::map<std::string, at::Tensor> gradients;
    for (const auto& item : model->named_parameters())
      gradients[item.key()] = item.value().grad().clone();
    return gradients;
  };
  const auto shared = gradients_of(true);
  const auto padded = gradients_of(false);
  for (const auto& [name, gradient] : padded) {
    const double scale = gradient.abs().max().item<double>();
    ASSERT_GT(scale, 0.0) << name;
    EXPECT_LT((shared.at(name) - gradient).abs().max().item<double>(), 1e-5 * std::max(scale, 1.0))
        << name;
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, SharedPrefixParity, ::testing::ValuesIn(kFixtureModels),
                         [](const auto& info) { return testing::fixture_test_name(info.param); });

// The dtype a GPU runs, on CPU: the fused kernels step aside and the plain
// expressions run in bfloat16, with gradients for every parameter.
TEST(SharedPrefix, BFloat16ModelStaysCloseToItsPaddedForward) {
  Transformer model = load_pretrained(fixture_path("tiny-llama"), at::kCPU, at::kBFloat16);
  const auto tokens = rows_tokens();
  const SharedPrefixBatch batch = make_shared_prefix_batch(as_rows(tokens));
  const at::Tensor shared = shared_prefix_logits(*model, batch);
  EXPECT_EQ(shared.scalar_type(), at::kFloat);
  at::Tensor padded;
  {
    at::NoGradGuard no_grad;
    padded = padded_target_logits(model, tokens, shared.size(1));
  }
  const at::Tensor real = batch.completion_mask.to(at::kBool);
  const double scale = padded.abs().max().item<double>();
  EXPECT_LT((shared.detach() - padded).abs().index({real}).max().item<double>(), 0.05 * scale);
  shared.logsumexp(-1).index({real}).sum().backward();
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(item.value().grad().isfinite().all().item<bool>()) << item.key();
  }
}

TEST(SharedPrefix, PacksEachConsecutivePromptOnce) {
  const auto tokens = rows_tokens();
  const SharedPrefixBatch batch = make_shared_prefix_batch(as_rows(tokens));
  // Prompts 5 + 3 + 5 tokens; completions 4 + 1 + 6 + 2 + 4 + 2, each but its
  // last token (a target only) packed: 3 + 0 + 5 + 1 + 3 + 1.
  EXPECT_EQ(batch.tokens.size(0), 13 + 13);
  EXPECT_EQ(batch.prompt_slots.size(0), 13);
  // Inputs by length: {5, 3, 3}, then {1, 1} (at most half the longest); the
  // one-token completion has none.
  ASSERT_EQ(batch.buckets.size(), 2u);
  EXPECT_EQ(batch.buckets[0].query_index.sizes(), (c10::IntArrayRef{3, 5}));
  EXPECT_EQ(batch.buckets[1].query_index.sizes(), (c10::IntArrayRef{2, 1}));
  EXPECT_EQ(batch.buckets[0].slots.size(0) + batch.buckets[1].slots.size(0), 13);
  // Every completion token is a target, the last ones included.
  EXPECT_EQ(batch.completion_mask.sum().item<double>(), 19);
  EXPECT_EQ(batch.targets[2][5].item<int64_t>(), 65);
  // Positions continue from the prompt into each completion.
  const int64_t first_completion = batch.predecessor_index[0][1].item<int64_t>();
  EXPECT_EQ(batch.positions[first_completion].item<int64_t>(), 5);
  EXPECT_EQ(batch.tokens[first_completion].item<int64_t>(), 40);
  // The first target of a row is predicted from its prompt's last token.
  EXPECT_EQ(batch.tokens[batch.predecessor_index[1][0].item<int64_t>()].item<int64_t>(), 15);
  EXPECT_EQ(batch.tokens[batch.predecessor_index[4][0].item<int64_t>()].item<int64_t>(), 23);
}

TEST(SharedPrefix, RejectsARowWithoutCompletionNamingIt) {
  const std::vector<int64_t> row = {1, 2, 3};
  try {
    make_shared_prefix_batch({{row, 2}, {row, 3}});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("row 1 has prompt_length 3 of 3 tokens"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace r1kit
