// banned_token_ids: the listed ids are never sampled, their logits set to -inf
// (transformers' suppress_tokens, SuppressTokensLogitsProcessor; no paper).
#include <limits>
#include <memory>
#include <vector>

#include "rollout/logits_processor.h"

namespace r1kit {
namespace {

class BannedTokenIdsProcessor : public LogitsProcessor {
 public:
  explicit BannedTokenIdsProcessor(std::vector<int64_t> ids) : ids_(std::move(ids)) {}

  at::Tensor apply(const at::Tensor& logits, const LogitsContext&) const override {
    at::Tensor index = at::tensor(ids_, at::kLong).to(logits.device());  // (N)
    return logits.index_fill(-1, index, -std::numeric_limits<double>::infinity());
  }

 private:
  std::vector<int64_t> ids_;
};

std::shared_ptr<const LogitsProcessor> make_banned_token_ids(const SamplingParams& params) {
  if (params.banned_token_ids.empty()) return nullptr;
  return std::make_shared<BannedTokenIdsProcessor>(params.banned_token_ids);
}

}  // namespace

R1KIT_REGISTER(logits_processor_registry(), "banned_token_ids", make_banned_token_ids);

}  // namespace r1kit
