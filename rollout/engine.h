// The generation engine: tokenized prompts in, sampled completions out. Each
// distinct prompt is prefilled once into the KV cache and fanned out to its n
// samples; decode runs batched over every live row; a finished sequence leaves
// the batch and a waiting prompt takes its rows (continuous batching). The
// forward passes run on a DecodePlan of the weights in the compute dtype.
// One engine is used by one thread at a time; several engines may share one
// PolicyWeights, whose lock keeps generation and weight updates apart.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/config.h"
#include "policy/kv_cache.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"
#include "rollout/decode_plan.h"
#include "rollout/sampling_params.h"

namespace r1kit {

// The policy as the rollout side sees it: the module, a version number that
// grows with every published update, the lock that makes an update atomic
// with respect to sampling, and the decode plans (the weights re-laid out for
// generation) built from the current weights.
struct PolicyWeights {
  explicit PolicyWeights(Transformer policy) : model(std::move(policy)) {}

  Transformer model;
  std::shared_mutex mutex;  // shared while sampling, exclusive while updating
  std::atomic<int64_t> version{0};

  // Runs `update` (an optimiser step, a copy of new weights) while no engine is
  // sampling, then bumps the version and drops the decode plans. Thread-safe.
  // Engines see the model only through publish(): a change made to `model`
  // any other way is not seen by a plan already built.
  void publish(const std::function<void(Transformer&)>& update);

  // The decode plan of the current weights in `dtype`, built on first use
  // after each publish. Call with `mutex` held shared (as generate does).
  std::shared_ptr<const DecodePlan> decode_plan(at::ScalarType dtype);

  // Drops the decode plans now; the next generate builds them again. Called
  // between the rollouts and the update, so their copy of the weights is not
  // held while the learner needs the memory. Thread-safe.
  void release_decode_plans();

 private:
  std::mutex plans_mutex_;  // guards plans_ between samplers
  std::map<at::ScalarType, std::shared_ptr<const DecodePlan>> plans_;  // by compute dtype
};

enum class FinishReason { kStop, kLength };
const char* finish_reason_name(FinishReason reason);

struct Completion {
  int64_t prompt_index = 0;        // position in the prompts given to generate()
  int64_t sample_index = 0;        // 0..n-1 within its prompt
  std::vector<int64_t> token_ids;  // generated ids, prompt excluded (T)
  std::vector<float> logprobs;     // (T) see SampledTokens::logprobs
  std::string text;  // decoded ids without a final stop token, cut before a stop string
                     // ("" without a tokenizer)
  FinishReason finish_reason = FinishReason::kLength;
  int64_t weights_version = 0;  // the PolicyWeights version that sampled it
};

struct EngineOptions {
  int64_t max_batch_size = 64;  // cache rows decoded together; raised to n when smaller
  int64_t max_length = 0;       // prompt + completion tokens per row; 0 = the model's context
  // Weights, activations and KV cache of generation: "float32" (the learner's
  // numbers: logprobs match its recomputation to ~1e-6) or "bfloat16" (weights
  // cast once per published version, logits upcast to float32 before sampling;
  // logprobs then differ from a float32 learner by ~0.02 nats on average, a
  // few tenths at worst: tests/rollout/decode_plan_test.cpp states the bounds).
  // bfloat16 is the fast choice on CPUs with AMX/AVX512-BF16 and on GPUs.
  std::string compute_dtype = "float32";
  // CPU threads of this engine's ops while it generates (OpenMP's setting of
  // the calling thread only); 0 = the process's (at::get_num_threads()).
  // RolloutWorkers divides the cores among its engines.
  int64_t num_threads = 0;

  void visit(ConfigVisitor& v);
};

// Called with each piece of newly decoded text of a sequence (streaming).
using TextCallback =
    std::function<void(int64_t prompt_index, int64_t sample_index, const std::string& text)>;

class RolloutEngine {
 public:
  // `tokenizer` (may be null) decodes text, matches stop strings and supplies
  // the end-of-sequence id; it must outlive the engine.
  RolloutEngine(std::shared_ptr<PolicyWeights> weights, const Tokenizer* tokenizer,
                EngineOptions options = {});

  // Samples params.n completions for every prompt, returned in (prompt,
  // sample) order. Throws a usage error for an empty prompt, a prompt that
  // fills the context, or invalid params; Error(kRuntime) when a sampled
  // token's logits are not finite (NaN or infinite weights or activations).
  // `first_prompt_index` numbers the prompts from there (in results and in
  // the per-sequence seeds), so a batch split across workers draws as one.
  std::vector<Completion> generate(const std::vector<std::vector<int64_t>>& prompts,
                                   const SamplingParams& params, const TextCallback& on_text = {},
                                   int64_t first_prompt_index = 0);

  const std::shared_ptr<PolicyWeights>& weights() const { return weights_; }
  // Changes EngineOptions::num_threads for the next generate() calls.
  void set_num_threads(int64_t threads) { options_.num_threads = threads; }

  // Counters of the last generate(): for benchmarks and metrics.
  struct Stats {
    int64_t prefill_tokens = 0;
    int64_t decode_tokens = 0;
    int64_t decode_steps = 0;
    double prefill_seconds = 0;
    double decode_seconds = 0;
  };
  const Stats& last_stats() const { return stats_; }

 private:
  std::shared_ptr<PolicyWeights> weights_;
  const Tokenizer* tokenizer_;
  EngineOptions options_;
  at::ScalarType compute_dtype_;
  std::unique_ptr<KvCache> cache_;  // kept between calls when the shape fits
  Stats stats_;
};

}  // namespace r1kit
