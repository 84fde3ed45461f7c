// mask_padded_vocab: a model whose vocabulary is padded past the tokenizer's
// (Qwen2.5: 151,936 rows for 151,665 tokens, padded for matmul speed) never
// samples an id the tokenizer cannot decode (vLLM cuts those logits off; the
// padding comes from Megatron-LM, Shoeybi et al. 2019).
#include <limits>
#include <memory>

#include "rollout/logits_processor.h"

namespace r1kit {
namespace {

class MaskPaddedVocabProcessor : public LogitsProcessor {
 public:
  at::Tensor apply(const at::Tensor& logits, const LogitsContext& context) const override {
    const int64_t vocab = logits.size(-1), known = context.tokenizer_vocab_size;
    TORCH_CHECK(known > 0, "mask_padded_vocab needs the tokenizer's vocabulary size");
    if (known >= vocab) return logits;
    at::Tensor masked = logits.clone();
    masked.narrow(-1, known, vocab - known).fill_(-std::numeric_limits<double>::infinity());
    return masked;
  }
};

std::shared_ptr<const LogitsProcessor> make_mask_padded_vocab(const SamplingParams& params) {
  if (!params.mask_padded_vocab) return nullptr;
  return std::make_shared<MaskPaddedVocabProcessor>();
}

}  // namespace

R1KIT_REGISTER(logits_processor_registry(), "mask_padded_vocab", make_mask_padded_vocab);

}  // namespace r1kit
