// How to sample a completion: temperature and the top-k / top-p / min-p
// filters, length, stop conditions, samples per prompt and seed. A recipe's
// `sampling` section and `r1kit generate`'s flags both fill this struct.
// Plain data: copy freely, validate() once before use.
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
  int64_t max_new_tokens = 256;         // completion budget in tokens (TRL: max_completion_length)
  std::vector<int64_t> stop_token_ids;  // generation ends after one of these (kept in the ids)
  std::vector<std::string>
      stop_strings;         // generation ends when the text contains one (cut from the text)
  bool stop_at_eos = true;  // also stop at the tokenizer's end-of-sequence token
  int64_t n = 1;            // completions per prompt (TRL: num_generations)
  int64_t seed = 0;         // fixes every draw, whatever the batching

  void visit(ConfigVisitor& v);
  // Throws a usage error naming the field for a value out of range.
  void validate(int64_t vocab_size) const;
};

}  // namespace r1kit
