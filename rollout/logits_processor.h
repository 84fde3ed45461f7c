// Logits processors: the steps between a model's logits and the draw (temperature,
// top-k, top-p, min-p, penalties, bans), each a small object behind one interface,
// named in a registry and chained in the order a recipe gives (Hugging Face's
// LogitsProcessorList, llama.cpp's sampler chain). Processors are immutable once
// built, so one chain may serve many threads; the chain shares its processors.
//
//   class BanFirstToken : public r1kit::LogitsProcessor {
//    public:
//     at::Tensor apply(const at::Tensor& logits, const r1kit::LogitsContext&) const override {
//       return logits.index_fill(-1, at::zeros({1}, at::kLong).to(logits.device()), -INFINITY);
//     }
//   };
//   R1KIT_REGISTER(r1kit::logits_processor_registry(), "ban_first_token",
//                  [](const r1kit::SamplingParams&) { return std::make_shared<BanFirstToken>(); });
//   // a recipe: "logits_processors": ["temperature", "ban_first_token", "top_p"]
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/registry.h"
#include "rollout/sampling_params.h"

namespace r1kit {

// What a processor may read besides the logits. The views point into the
// caller's buffers and are valid during apply() only.
struct LogitsContext {
  // Per row of the logits (B entries, or none where the caller keeps no
  // history): the prompt's ids and the ids generated after it so far. The
  // engine fills both on every step; they are views, so that costs nothing.
  std::vector<std::span<const int64_t>> prompt_ids;
  std::vector<std::span<const int64_t>> generated_ids;
  // Ids the tokenizer can decode (Tokenizer::vocab_size); 0 = unknown.
  int64_t tokenizer_vocab_size = 0;

  bool has_history() const { return !prompt_ids.empty() || !generated_ids.empty(); }
};

class LogitsProcessor {
 public:
  virtual ~LogitsProcessor() = default;
  // logits (B, V) float32. Returns the processed logits (B, V) float32, a new
  // tensor or `logits` itself; never writes into `logits`. A token a processor
  // removes gets -inf. Must be safe to call from many threads at once.
  virtual at::Tensor apply(const at::Tensor& logits, const LogitsContext& context) const = 0;
};

// Builds a processor from the sampling knobs it reads; nullptr when the knobs
// leave it off (the chain then skips it: temperature 0 turns the truncation
// filters off, since they never change the argmax).
using LogitsProcessorFactory =
    std::function<std::shared_ptr<const LogitsProcessor>(const SamplingParams& params)>;

// The processors by name: the built-ins (rollout/logits_*.cpp) and any a
// program registers with R1KIT_REGISTER(logits_processor_registry(), ...).
Registry<LogitsProcessorFactory>& logits_processor_registry();

// The order used when SamplingParams::logits_processors is empty: penalties and
// bans on the model's logits, then temperature and the truncation filters
// (transformers' processors before its warpers): repetition_penalty,
// banned_token_ids, mask_padded_vocab, temperature, top_k, top_p, min_p.
const std::vector<std::string>& default_logits_processor_order();

// What is wrong with `params`' processor order, "" when nothing: an unknown
// name (the registry's message), a name listed twice, no `temperature` (the
// logprobs and the learner divide by it), or a built-in knob that is set while
// the order leaves its processor out.
std::string logits_processor_order_problem(const SamplingParams& params);

// The processors of one SamplingParams, built once and applied in order.
class LogitsProcessorChain {
 public:
  LogitsProcessorChain() = default;
  // Builds params.logits_processors (the default order when empty), skipping
  // processors whose knobs leave them off. An unknown name throws the
  // registry's config error.
  explicit LogitsProcessorChain(const SamplingParams& params);

  // Runs processors [first, size()) in order on logits (B, V) float32.
  at::Tensor apply(const at::Tensor& logits, const LogitsContext& context, size_t first = 0) const;

  // The names of the processors built, in order.
  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return processors_.size(); }
  bool empty() const { return processors_.empty(); }

 private:
  std::vector<std::string> names_;
  std::vector<std::shared_ptr<const LogitsProcessor>> processors_;
};

}  // namespace r1kit
