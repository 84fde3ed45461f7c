// top_k: keeps the k largest logits of each row, ties with the k-th included
// (Fan, Lewis and Dauphin 2018, "Hierarchical Neural Story Generation").
#include <limits>
#include <memory>

#include "rollout/logits_processor.h"

namespace r1kit {
namespace {

class TopKProcessor : public LogitsProcessor {
 public:
  explicit TopKProcessor(int64_t top_k) : top_k_(top_k) {}

  at::Tensor apply(const at::Tensor& logits, const LogitsContext&) const override {
    if (top_k_ >= logits.size(-1)) return logits;
    at::Tensor kth = std::get<0>(logits.topk(top_k_, -1)).narrow(-1, top_k_ - 1, 1);  // (B, 1)
    return logits.masked_fill(logits < kth, -std::numeric_limits<double>::infinity());
  }

 private:
  int64_t top_k_;
};

std::shared_ptr<const LogitsProcessor> make_top_k(const SamplingParams& params) {
  if (params.top_k <= 0 || params.temperature == 0.0) return nullptr;
  return std::make_shared<TopKProcessor>(params.top_k);
}

}  // namespace

R1KIT_REGISTER(logits_processor_registry(), "top_k", make_top_k);

}  // namespace r1kit
