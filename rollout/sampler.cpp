#include "rollout/sampler.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

#include "common/avx512_math.h"

namespace r1kit {
namespace {

#ifdef R1KIT_HAVE_AVX512_KERNEL
// Greedy decoding of rows [begin, end) of (B, V) logits, float32 or bfloat16,
// contiguous: the first index of each row's maximum and its log-softmax,
// -log(sum(exp(logits - max))), in two passes over the row and float32
// arithmetic. A row with a NaN or +inf logit gets token 0 and a NaN logprob,
// as log_softmax gives it, which the engine reports.
template <class T>
R1KIT_AVX512 void greedy_rows(const T* logits, int64_t* tokens, float* logprobs, int64_t begin,
                              int64_t end, int64_t vocab) {
  for (int64_t b = begin; b < end; ++b) {
    const T* row = logits + b * vocab;
    __m512 best = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __mmask16 nan = 0;
    int64_t v = 0;
    for (; v + 16 <= vocab; v += 16) {
      const __m512 values = load16(row + v);
      nan |= _mm512_cmp_ps_mask(values, values, _CMP_UNORD_Q);
      best = _mm512_max_ps(best, values);
    }
    float top = _mm512_reduce_max_ps(best);
    for (; v < vocab; ++v) {
      const float value = static_cast<float>(row[v]);
      if (std::isnan(value)) nan = 1;
      top = std::max(top, value);
    }
    if (nan != 0 || top == std::numeric_limits<float>::infinity()) {
      tokens[b] = 0;
      logprobs[b] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    int64_t index = 0;
    while (index < vocab && !(static_cast<float>(row[index]) == top)) ++index;
    tokens[b] = index < vocab ? index : 0;
    const __m512 shift = _mm512_set1_ps(top);
    __m512 total = _mm512_setzero_ps();
    for (v = 0; v + 16 <= vocab; v += 16)
      total = _mm512_add_ps(total, exp16(_mm512_sub_ps(load16(row + v), shift)));
    double sum = _mm512_reduce_add_ps(total);
    for (; v < vocab; ++v) sum += std::exp(static_cast<double>(static_cast<float>(row[v]) - top));
    logprobs[b] = static_cast<float>(-std::log(sum));
  }
}
#endif

// Greedy tokens and their logprobs (log-softmax at temperature 1). ATen's CPU
// argmax is a scalar loop and log_softmax writes the whole (B, V) matrix: at a
// 64 x 8192 decode step they cost more than the norms.
SampledTokens greedy_tokens(const at::Tensor& logits) {
#ifdef R1KIT_HAVE_AVX512_KERNEL
  if (cpu_has_avx512() && logits.device().is_cpu() && logits.is_contiguous() &&
      (logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kBFloat16)) {
    const int64_t rows = logits.size(0), vocab = logits.size(1);
    at::Tensor tokens = at::empty({rows}, at::kLong);
    at::Tensor logprobs = at::empty({rows}, at::kFloat);
    int64_t* token_data = tokens.mutable_data_ptr<int64_t>();
    float* logprob_data = logprobs.mutable_data_ptr<float>();
    at::parallel_for(0, rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(vocab, 1)),
                     [&](int64_t begin, int64_t end) {
                       if (logits.scalar_type() == at::kFloat) {
                         greedy_rows(logits.const_data_ptr<float>(), token_data, logprob_data,
                                     begin, end, vocab);
                       } else {
                         greedy_rows(logits.const_data_ptr<c10::BFloat16>(), token_data,
                                     logprob_data, begin, end, vocab);
                       }
                     });
    return {tokens, logprobs};
  }
#endif
  at::Tensor logits32 = logits.to(at::kFloat);
  at::Tensor tokens = logits32.argmax(-1);
  return {tokens, logits32.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)};
}

}  // namespace

Sampler::Sampler(const SamplingParams& params)
    : temperature_(params.temperature),
      chain_(params),
      chain_starts_with_temperature_(!chain_.empty() && chain_.names().front() == "temperature") {}

SampledTokens Sampler::sample(const at::Tensor& logits, const at::Tensor& uniforms,
                              const LogitsContext& context) const {
  TORCH_CHECK(logits.dim() == 2, "sample_tokens: logits must be (B, V), got ", logits.sizes());
  if (temperature_ == 0.0) {
    if (chain_.empty()) return greedy_tokens(logits);
    // Penalties or bans move the argmax; the logprob stays that of the logits.
    at::Tensor logits32 = logits.to(at::kFloat);
    at::Tensor tokens = greedy_tokens(chain_.apply(logits32, context)).tokens;
    return {tokens, logits32.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)};
  }
  at::Tensor logits32 = logits.to(at::kFloat);  // exact from bfloat16
  at::Tensor scaled = logits32 / temperature_;
  at::Tensor processed = chain_starts_with_temperature_ ? chain_.apply(scaled, context, 1)
                                                        : chain_.apply(logits32, context);
  at::Tensor cumulative = processed.softmax(-1).to(at::kDouble).cumsum(-1);  // (B, V)
  at::Tensor total = cumulative.narrow(-1, cumulative.size(-1) - 1, 1);      // (B, 1)
  at::Tensor targets = uniforms.to(at::kDouble).view({-1, 1}).to(cumulative.device()) * total;
  // The first index whose cumulative mass exceeds the target: tokens with zero
  // probability never qualify.
  at::Tensor tokens = at::searchsorted(cumulative, targets, /*out_int32=*/false, /*right=*/true)
                          .squeeze(-1)
                          .clamp_max(cumulative.size(-1) - 1);
  at::Tensor logprobs = scaled.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  return {tokens, logprobs};
}

SampledTokens sample_tokens(const at::Tensor& logits, const SamplingParams& params,
                            const at::Tensor& uniforms, const LogitsContext& context) {
  return Sampler(params).sample(logits, uniforms, context);
}

}  // namespace r1kit
