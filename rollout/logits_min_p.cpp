// min_p: drops tokens whose probability is below min_p times the most likely
// token's (Nguyen et al. 2024, "Turning Up the Heat: Min-p Sampling").
#include <limits>
#include <memory>

#include "rollout/logits_processor.h"

namespace r1kit {
namespace {

class MinPProcessor : public LogitsProcessor {
 public:
  explicit MinPProcessor(double min_p) : min_p_(min_p) {}

  at::Tensor apply(const at::Tensor& logits, const LogitsContext&) const override {
    at::Tensor probs = logits.softmax(-1);
    at::Tensor threshold = probs.amax(-1, /*keepdim=*/true) * min_p_;  // (B, 1)
    return logits.masked_fill(probs < threshold, -std::numeric_limits<double>::infinity());
  }

 private:
  double min_p_;
};

std::shared_ptr<const LogitsProcessor> make_min_p(const SamplingParams& params) {
  if (params.min_p <= 0.0 || params.temperature == 0.0) return nullptr;
  return std::make_shared<MinPProcessor>(params.min_p);
}

}  // namespace

R1KIT_REGISTER(logits_processor_registry(), "min_p", make_min_p);

}  // namespace r1kit
