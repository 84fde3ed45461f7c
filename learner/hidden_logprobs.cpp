#include "learner/hidden_logprobs.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <limits>

namespace r1kit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// How a (N, H) x (V, H) problem is cut: token blocks of `tokens` rows, vocabulary
// blocks of `vocabulary` rows, at most about `block_values` logits each.
struct Blocking {
  int64_t tokens = 1;
  int64_t vocabulary = 1;
  double scale = 1.0;  // 1 / temperature, or 1
  at::ScalarType matmul_dtype = at::kFloat;
};

// The largest vocabulary slice one block takes: big matmuls, and online
// logsumexp across slices only for large vocabularies.
constexpr int64_t kMaxVocabularyBlock = 32768;

Blocking make_blocking(int64_t vocabulary, int64_t block_values, double temperature,
                       at::ScalarType matmul_dtype) {
  Blocking blocking;
  blocking.vocabulary = std::min({vocabulary, kMaxVocabularyBlock, block_values});
  blocking.tokens = std::max<int64_t>(1, block_values / blocking.vocabulary);
  blocking.scale = (temperature == 0.0 || temperature == 1.0) ? 1.0 : 1.0 / temperature;
  blocking.matmul_dtype = matmul_dtype;
  return blocking;
}

// logits / temperature of one block, float32: hidden (n, H), weight (v, H),
// both already in the matmul dtype -> (n, v).
at::Tensor block_logits(const at::Tensor& hidden, const at::Tensor& weight,
                        const Blocking& blocking) {
  at::Tensor logits = at::mm(hidden, weight.t()).to(at::kFloat);
  if (blocking.scale != 1.0) logits.mul_(blocking.scale);
  return logits;
}

class HiddenLogprobsFunction : public torch::autograd::Function<HiddenLogprobsFunction> {
 public:
  // hidden (N, H), weight (V, H), targets (N) -> {logprobs (N), entropy (N)}.
  static variable_list forward(AutogradContext* context, const at::Tensor& hidden,
                               const at::Tensor& weight, const at::Tensor& targets,
                               Blocking blocking) {
    const int64_t count = hidden.size(0), vocabulary = weight.size(0);
    // Cast once, not per block (aliases when the matmul dtype is theirs).
    const at::Tensor low_hidden = hidden.to(blocking.matmul_dtype);
    const at::Tensor low_weight = weight.to(blocking.matmul_dtype);
    const auto options = hidden.options().dtype(at::kFloat);
    at::Tensor log_normalizer = at::empty({count}, options);  // logsumexp of the scaled logits
    at::Tensor mean_logit = at::empty({count}, options);      // E_p[scaled logit]
    at::Tensor target_logit = at::empty({count}, options);
    for (int64_t n0 = 0; n0 < count; n0 += blocking.tokens) {
      const int64_t n = std::min(blocking.tokens, count - n0);
      const at::Tensor block_hidden = low_hidden.narrow(0, n0, n);
      const at::Tensor block_targets = targets.narrow(0, n0, n);
      // Online logsumexp over vocabulary slices (Milakov & Gimelshein 2018).
      at::Tensor running_max = at::full({n}, -std::numeric_limits<float>::infinity(), options);
      at::Tensor exp_sum = at::zeros({n}, options);
      at::Tensor exp_logit_sum = at::zeros({n}, options);
      at::Tensor picked = at::zeros({n}, options);
      for (int64_t v0 = 0; v0 < vocabulary; v0 += blocking.vocabulary) {
        const int64_t v = std::min(blocking.vocabulary, vocabulary - v0);
        const at::Tensor logits = block_logits(block_hidden, low_weight.narrow(0, v0, v), blocking);
        const at::Tensor new_max = at::maximum(running_max, std::get<0>(logits.max(1)));
        const at::Tensor rescale = (running_max - new_max).exp_();
        const at::Tensor shifted_exp = (logits - new_max.unsqueeze(1)).exp_();
        exp_sum = exp_sum * rescale + shifted_exp.sum(1);
        exp_logit_sum = exp_logit_sum * rescale + (shifted_exp * logits).sum(1);
        running_max = new_max;
        const at::Tensor local = block_targets - v0;
        const at::Tensor inside = (local >= 0).logical_and_(local < v);
        const at::Tensor gathered = logits.gather(1, local.clamp(0, v - 1).unsqueeze(1)).squeeze(1);
        picked = at::where(inside, gathered, picked);
      }
      log_normalizer.narrow(0, n0, n).copy_(running_max + exp_sum.log());
      mean_logit.narrow(0, n0, n).copy_(exp_logit_sum / exp_sum);
      target_logit.narrow(0, n0, n).copy_(picked);
    }
    context->set_materialize_grads(false);  // an unused output sends no gradient, not zeros
    context->save_for_backward({hidden, weight, targets, log_normalizer, mean_logit});
    context->saved_data["token_block"] = blocking.tokens;
    context->saved_data["vocabulary_block"] = blocking.vocabulary;
    context->saved_data["scale"] = blocking.scale;
    context->saved_data["matmul_dtype"] = static_cast<int64_t>(blocking.matmul_dtype);
    return {target_logit - log_normalizer, log_normalizer - mean_logit};
  }

  // d logprob / d z_v = [v = target] - p_v;  d entropy / d z_v = -p_v (z_v - E_p[z]).
  static variable_list backward(AutogradContext* context, variable_list output_gradients) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const variable_list saved = context->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2];
    const at::Tensor &log_normalizer = saved[3], &mean_logit = saved[4];
    Blocking blocking;
    blocking.tokens = context->saved_data["token_block"].toInt();
    blocking.vocabulary = context->saved_data["vocabulary_block"].toInt();
    blocking.scale = context->saved_data["scale"].toDouble();
    blocking.matmul_dtype =
        static_cast<at::ScalarType>(context->saved_data["matmul_dtype"].toInt());
    const at::Tensor& logprob_gradient = output_gradients[0];
    const at::Tensor& entropy_gradient = output_gradients[1];
    const bool want_hidden = context->needs_input_grad(0);
    const bool want_weight = context->needs_input_grad(1);
    const int64_t count = hidden.size(0), vocabulary = weight.size(0);
    // Cast once, not per block (aliases when the matmul dtype is theirs).
    const at::Tensor low_hidden = hidden.to(blocking.matmul_dtype);
    const at::Tensor low_weight = weight.to(blocking.matmul_dtype);
    at::Tensor hidden_gradient, weight_gradient;  // accumulated in float32
    if (want_hidden)
      hidden_gradient = at::zeros(hidden.sizes(), hidden.options().dtype(at::kFloat));
    if (want_weight)
      weight_gradient = at::zeros(weight.sizes(), weight.options().dtype(at::kFloat));
    for (int64_t n0 = 0; n0 < count && (want_hidden || want_weight); n0 += blocking.tokens) {
      const int64_t n = std::min(blocking.tokens, count - n0);
      const at::Tensor block_hidden = low_hidden.narrow(0, n0, n);
      const at::Tensor block_targets = targets.narrow(0, n0, n);
      const at::Tensor block_normalizer = log_normalizer.narrow(0, n0, n).unsqueeze(1);
      for (int64_t v0 = 0; v0 < vocabulary; v0 += blocking.vocabulary) {
        const int64_t v = std::min(blocking.vocabulary, vocabulary - v0);
        const at::Tensor block_weight = low_weight.narrow(0, v0, v);
        const at::Tensor logits = block_logits(block_hidden, block_weight, blocking);
        const at::Tensor probs = (logits - block_normalizer).exp_();  // (n, v)
        at::Tensor logits_gradient = at::zeros_like(logits);
        if (logprob_gradient.defined()) {
          const at::Tensor upstream = logprob_gradient.narrow(0, n0, n).unsqueeze(1);
          logits_gradient.sub_(probs * upstream);
          const at::Tensor local = block_targets - v0;
          const at::Tensor inside = (local >= 0).logical_and_(local < v);
          logits_gradient.scatter_add_(1, local.clamp(0, v - 1).unsqueeze(1),
                                       (upstream.squeeze(1) * inside.to(at::kFloat)).unsqueeze(1));
        }
        if (entropy_gradient.defined()) {
          const at::Tensor upstream = entropy_gradient.narrow(0, n0, n).unsqueeze(1);
          const at::Tensor centered = logits - mean_logit.narrow(0, n0, n).unsqueeze(1);
          logits_gradient.sub_(probs * centered * upstream);
        }
        if (blocking.scale != 1.0) logits_gradient.mul_(blocking.scale);
        const at::Tensor low = logits_gradient.to(blocking.matmul_dtype);
        if (want_hidden) {
          hidden_gradient.narrow(0, n0, n).add_(at::mm(low, block_weight).to(at::kFloat));
        }
        if (want_weight) {
          weight_gradient.narrow(0, v0, v).add_(at::mm(low.t(), block_hidden).to(at::kFloat));
        }
      }
    }
    if (hidden_gradient.defined()) hidden_gradient = hidden_gradient.to(hidden.scalar_type());
    if (weight_gradient.defined()) weight_gradient = weight_gradient.to(weight.scalar_type());
    return {hidden_gradient, weight_gradient, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

HiddenLogprobs hidden_logprobs(const at::Tensor& hidden, const at::Tensor& weight,
                               const at::Tensor& targets, double temperature, bool with_entropy,
                               std::optional<at::ScalarType> matmul_dtype, int64_t block_values) {
  TORCH_CHECK(temperature >= 0.0, "temperature must be >= 0, got ", temperature);
  TORCH_CHECK(weight.dim() == 2 && hidden.dim() >= 1 && hidden.size(-1) == weight.size(1),
              "hidden_logprobs: hidden ", hidden.sizes(), " does not match weight ",
              weight.sizes());
  TORCH_CHECK(targets.sizes() == hidden.sizes().slice(0, hidden.dim() - 1),
              "hidden_logprobs: targets ", targets.sizes(), " do not match hidden ",
              hidden.sizes());
  TORCH_CHECK(block_values > 0, "hidden_logprobs: block_values must be positive");
  // The blocks pick their own dtype; an enclosing autocast region must not recast them.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const Blocking blocking = make_blocking(weight.size(0), block_values, temperature,
                                          matmul_dtype.value_or(hidden.scalar_type()));
  const at::Tensor flat_hidden = hidden.reshape({-1, hidden.size(-1)});
  const at::Tensor flat_targets = targets.reshape({-1}).to(at::kLong);
  variable_list outputs =
      HiddenLogprobsFunction::apply(flat_hidden, weight, flat_targets, blocking);
  HiddenLogprobs result;
  result.logprobs = outputs[0].view(targets.sizes());
  if (with_entropy) result.entropy = outputs[1].view(targets.sizes());
  return result;
}

}  // namespace r1kit
