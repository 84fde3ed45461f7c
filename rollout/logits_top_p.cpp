// top_p: nucleus sampling keeps the most likely tokens until their mass reaches
// p (Holtzman et al. 2019, "The Curious Case of Neural Text Degeneration").
#include <limits>
#include <memory>

#include "rollout/logits_processor.h"

namespace r1kit {
namespace {

class TopPProcessor : public LogitsProcessor {
 public:
  explicit TopPProcessor(double top_p) : top_p_(top_p) {}

  at::Tensor apply(const at::Tensor& logits, const LogitsContext&) const override {
    auto [sorted, order] = logits.sort(-1, /*descending=*/true);  // (B, V) each
    at::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
    // Remove a token when the tokens before it already reach top_p; the most
    // likely token always stays.
    at::Tensor remove_sorted = (cumulative - sorted.softmax(-1)) >= top_p_;
    at::Tensor remove = at::zeros_like(remove_sorted).scatter(-1, order, remove_sorted);
    return logits.masked_fill(remove, -std::numeric_limits<double>::infinity());
  }

 private:
  double top_p_;
};

std::shared_ptr<const LogitsProcessor> make_top_p(const SamplingParams& params) {
  if (params.top_p >= 1.0 || params.temperature == 0.0) return nullptr;
  return std::make_shared<TopPProcessor>(params.top_p);
}

}  // namespace

R1KIT_REGISTER(logits_processor_registry(), "top_p", make_top_p);

}  // namespace r1kit
