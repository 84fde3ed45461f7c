// How to sample a completion: temperature, the top-k / top-p / min-p filters,
// penalties and bans (the logits processors of rollout/logits_processor.h and
// their order), length, stop conditions, samples per prompt and seed. A recipe's
// `sampling` section, an RL recipe's `grpo` section (learner/sampling_recipe.h)
// and `r1kit generate`'s flags fill this struct. Plain data: copy freely,
// validate() once before use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"

namespace r1kit {

struct SamplingParams {
  double temperature = 1.0;  // softmax temperature; 0 = greedy (argmax)
  double top_p = 1.0;        // nucleus filter (Holtzman et al. 2019); 1.0 = disabled
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = disabled
  double min_p = 0.0;        // drop tokens below min_p * p(max) (Nguyen et al. 2024); 0 = disabled
  // Logits of tokens in the prompt or generated so far: divided by it when
  // positive, multiplied when negative (CTRL, Keskar et al. 2019); 1.0 = disabled.
  double repetition_penalty = 1.0;
  std::vector<int64_t> banned_token_ids;  // never sampled (logit -inf); empty = none
  // Never sample ids >= the tokenizer's vocabulary size (a model vocabulary
  // padded past the tokenizer's). The engine turns it on by itself whenever the
  // model's vocabulary is larger than its tokenizer's (masked_padded_vocab
  // below), so false only means "not asked for".
  bool mask_padded_vocab = false;
  // The logits processors by name, in order (rollout/logits_processor.h); must
  // list temperature; empty = the default order, repetition_penalty,
  // banned_token_ids, mask_padded_vocab, temperature, top_k, top_p, min_p.
  std::vector<std::string> logits_processors;
  int64_t max_new_tokens = 256;         // completion budget in tokens (TRL: max_completion_length)
  std::vector<int64_t> stop_token_ids;  // generation ends after one of these (kept in the ids)
  std::vector<std::string>
      stop_strings;         // generation ends when the text contains one (cut from the text)
  bool stop_at_eos = true;  // also stop at the tokenizer's end-of-sequence token
  int64_t n = 1;            // completions per prompt (TRL: num_generations)
  int64_t seed = 0;         // fixes every draw, whatever the batching

  void visit(ConfigVisitor& v);
  // Throws a usage error naming the field for a value out of range, an unknown
  // processor name or an id outside the vocabulary.
  void validate(int64_t vocab_size) const;
};

// `params` for a model of `model_vocab_size` rows whose tokenizer decodes
// `tokenizer_vocab_size` ids: when the model's vocabulary is the larger (Qwen2.5:
// 151,936 rows for 151,665 tokens), mask_padded_vocab is on and, when a custom
// logits_processors order leaves it out, listed just before temperature, so
// padding ids are never drawn, greedy or not. Otherwise `params` unchanged.
SamplingParams masked_padded_vocab(SamplingParams params, int64_t model_vocab_size,
                                   int64_t tokenizer_vocab_size);

}  // namespace r1kit
