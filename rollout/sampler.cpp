#include "rollout/sampler.h"

#include <ATen/Parallel.h>

#include <limits>

#include "rollout/avx512_math.h"

namespace r1kit {
namespace {

#ifdef R1KIT_HAVE_AVX512_KERNEL
// The first index of each row's maximum; rows (B, V) float32 contiguous. NaN
// entries are skipped (ATen's argmax would pick them; a NaN logit is a broken
// model either way).
R1KIT_AVX512 void argmax_rows(const float* logits, int64_t* out, int64_t begin, int64_t end,
                              int64_t vocab) {
  for (int64_t b = begin; b < end; ++b) {
    const float* row = logits + b * vocab;
    __m512 best = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    int64_t v = 0;
    for (; v + 16 <= vocab; v += 16) best = _mm512_max_ps(best, _mm512_loadu_ps(row + v));
    float top = _mm512_reduce_max_ps(best);
    for (; v < vocab; ++v) top = std::max(top, row[v]);
    int64_t index = 0;
    while (index < vocab && !(row[index] == top)) ++index;
    out[b] = index < vocab ? index : 0;  // a row of NaN: 0
  }
}
#endif

// argmax over the last dimension of (B, V) float32 logits. ATen's CPU argmax
// is a scalar loop; at a 64 x 8192 decode step it costs more than the norms.
at::Tensor greedy_tokens(const at::Tensor& logits) {
#ifdef R1KIT_HAVE_AVX512_KERNEL
  if (cpu_has_avx512() && logits.device().is_cpu() && logits.scalar_type() == at::kFloat &&
      logits.is_contiguous()) {
    at::Tensor tokens = at::empty({logits.size(0)}, at::kLong);
    const float* data = logits.const_data_ptr<float>();
    int64_t* out = tokens.mutable_data_ptr<int64_t>();
    const int64_t vocab = logits.size(1);
    at::parallel_for(0, logits.size(0), 8, [&](int64_t begin, int64_t end) {
      argmax_rows(data, out, begin, end, vocab);
    });
    return tokens;
  }
#endif
  return logits.argmax(-1);
}

}  // namespace

at::Tensor apply_filters(const at::Tensor& scaled_logits, const SamplingParams& params) {
  const int64_t vocab = scaled_logits.size(-1);
  const double minus_infinity = -std::numeric_limits<double>::infinity();
  at::Tensor logits = scaled_logits;
  if (params.top_k > 0 && params.top_k < vocab) {
    at::Tensor kth =
        std::get<0>(logits.topk(params.top_k, -1)).narrow(-1, params.top_k - 1, 1);  // (B, 1)
    logits = logits.masked_fill(logits < kth, minus_infinity);
  }
  if (params.top_p < 1.0) {
    auto [sorted, order] = logits.sort(-1, /*descending=*/true);  // (B, V) each
    at::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
    // Remove a token when the tokens before it already reach top_p; the most
    // likely token always stays.
    at::Tensor remove_sorted = (cumulative - sorted.softmax(-1)) >= params.top_p;
    at::Tensor remove = at::zeros_like(remove_sorted).scatter(-1, order, remove_sorted);
    logits = logits.masked_fill(remove, minus_infinity);
  }
  if (params.min_p > 0.0) {
    at::Tensor probs = logits.softmax(-1);
    at::Tensor threshold = probs.amax(-1, /*keepdim=*/true) * params.min_p;  // (B, 1)
    logits = logits.masked_fill(probs < threshold, minus_infinity);
  }
  return logits;
}

SampledTokens sample_tokens(const at::Tensor& logits, const SamplingParams& params,
                            const at::Tensor& uniforms) {
  TORCH_CHECK(logits.dim() == 2, "sample_tokens: logits must be (B, V), got ", logits.sizes());
  at::Tensor logits32 = logits.to(at::kFloat);
  if (params.temperature == 0.0) {
    at::Tensor tokens = greedy_tokens(logits32);
    at::Tensor logprobs = logits32.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
    return {tokens, logprobs};
  }
  at::Tensor scaled = logits32 / params.temperature;
  at::Tensor filtered = apply_filters(scaled, params);
  at::Tensor cumulative = filtered.softmax(-1).to(at::kDouble).cumsum(-1);  // (B, V)
  at::Tensor total = cumulative.narrow(-1, cumulative.size(-1) - 1, 1);     // (B, 1)
  at::Tensor targets = uniforms.to(at::kDouble).view({-1, 1}).to(cumulative.device()) * total;
  // The first index whose cumulative mass exceeds the target: tokens with zero
  // probability never qualify.
  at::Tensor tokens = at::searchsorted(cumulative, targets, /*out_int32=*/false, /*right=*/true)
                          .squeeze(-1)
                          .clamp_max(cumulative.size(-1) - 1);
  at::Tensor logprobs = scaled.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  return {tokens, logprobs};
}

}  // namespace r1kit
