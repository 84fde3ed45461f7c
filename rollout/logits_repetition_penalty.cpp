// repetition_penalty: the logit of every token already in the prompt or the
// completion is divided by the penalty when positive and multiplied by it when
// negative (CTRL, Keskar et al. 2019; transformers' RepetitionPenaltyLogitsProcessor).
#include <algorithm>
#include <memory>
#include <vector>

#include "rollout/logits_processor.h"

namespace r1kit {
namespace {

class RepetitionPenaltyProcessor : public LogitsProcessor {
 public:
  explicit RepetitionPenaltyProcessor(double penalty) : penalty_(penalty) {}

  at::Tensor apply(const at::Tensor& logits, const LogitsContext& context) const override {
    const int64_t rows = logits.size(0), vocab = logits.size(1);
    TORCH_CHECK(static_cast<int64_t>(context.prompt_ids.size()) == rows &&
                    static_cast<int64_t>(context.generated_ids.size()) == rows,
                "repetition_penalty needs the token history of every row: ", rows, " rows, ",
                context.prompt_ids.size(), " prompts, ", context.generated_ids.size(),
                " completions");
    std::vector<int64_t> positions;  // row * V + id of every (row, id) seen, once each
    for (int64_t row = 0; row < rows; ++row) {
      for (auto ids : {context.prompt_ids[row], context.generated_ids[row]}) {
        for (int64_t id : ids) {
          TORCH_CHECK(id >= 0 && id < vocab, "repetition_penalty: token id ", id,
                      " outside the vocabulary [0, ", vocab, ")");
          positions.push_back(row * vocab + id);
        }
      }
    }
    if (positions.empty()) return logits;
    std::sort(positions.begin(), positions.end());
    positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
    at::Tensor index = at::tensor(positions, at::kLong).to(logits.device());  // (N)
    at::Tensor flat = logits.contiguous().view({-1});                         // (B * V)
    at::Tensor seen = flat.index_select(0, index);                            // (N)
    at::Tensor penalized = at::where(seen < 0, seen * penalty_, seen / penalty_);
    return flat.index_copy(0, index, penalized).view_as(logits);
  }

 private:
  double penalty_;
};

std::shared_ptr<const LogitsProcessor> make_repetition_penalty(const SamplingParams& params) {
  if (params.repetition_penalty == 1.0) return nullptr;
  return std::make_shared<RepetitionPenaltyProcessor>(params.repetition_penalty);
}

}  // namespace

R1KIT_REGISTER(logits_processor_registry(), "repetition_penalty", make_repetition_penalty);

}  // namespace r1kit
