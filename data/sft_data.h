// Supervised fine-tuning data: JSONL examples rendered to token ids with a
// loss mask that is 1 only on what the model should learn to write (the
// response; the assistant turns of a chat), a held-out split for eval loss,
// and micro-batches padded to their longest row within a token budget.
// Functions only; a loaded SftDataset is read-only and may be shared.
//
// Line formats (the first that matches):
//   {"prompt": "...", "response" | "completion": "..."}   text = [bos] prompt response eos
//   {"messages": [{"role": ..., "content": ...}, ...]}     ChatML, loss on assistant turns
//   {"prompt": [messages], "completion": [messages]}       TRL's conversational form, as messages
// ChatML renders each turn as "<|im_start|>{role}\n{content}<|im_end|>\n"; an
// assistant turn's content and <|im_end|> carry the loss, never its header.
// The example ends with the tokenizer's eos (trained) when eos is not <|im_end|>.
//
// Packing (several examples in one row) is not done: our Transformer has no
// block-diagonal attention, so packed examples would attend to each other.
// Grouping by length keeps the padding small instead.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "policy/tokenizer.h"

namespace r1kit {

struct SftExample {
  std::vector<int64_t> ids;  // prompt and response tokens
  std::vector<uint8_t>
      loss_mask;     // 1 where ids[t] is a target to learn (response/assistant tokens)
  int64_t line = 0;  // 1-based line of the source file
};

struct SftDataOptions {
  int64_t max_length = 1024;            // tokens per example, prompt included
  std::string truncation = "truncate";  // truncate (keep the first max_length tokens) or drop
  bool strict = false;                  // a bad line is an error instead of a skip
  bool add_special_tokens = true;       // see render_sft_example
};

struct SftDataset {
  std::vector<SftExample> examples;
  std::vector<std::string> skipped;  // "file:line: why", one per skipped line
  int64_t truncated = 0;             // examples cut to max_length
};

// Renders one parsed line; throws Error(kData) saying what is wrong (no file or line).
// With `add_special_tokens`, a prompt/response line gets the tokenizer's
// post-processor tokens around it (before the prompt, after the eos), as TRL's
// SFTTrainer tokenizes prompt + completion; chat lines are rendered without them.
SftExample render_sft_example(const nlohmann::json& line, const Tokenizer& tokenizer,
                              bool add_special_tokens = true);

// Reads every line of `path` (blank lines ignored). A malformed line is
// skipped and reported as "path:line: why" (logged as a warning), or with
// `strict` throws Error(kData) with that message. Error(kIo) when unreadable;
// Error(kData) when no example is left.
SftDataset load_sft_jsonl(const std::string& path, const Tokenizer& tokenizer,
                          const SftDataOptions& options);

// Moves a fixed share of `data` (chosen by a hash of each example's line
// number, at most `max_eval`) into the returned held-out set.
std::vector<SftExample> split_off_eval(SftDataset& data, double eval_fraction, int64_t max_eval);

// Groups examples into micro-batches whose rows * longest row stays within
// `max_tokens_per_batch` (an example longer than the budget rides alone).
// With `rng`, examples are shuffled, sorted by length within windows of 1024
// and the batches shuffled; without, they are sorted by length (for eval).
std::vector<std::vector<size_t>> plan_sft_batches(const std::vector<SftExample>& examples,
                                                  int64_t max_tokens_per_batch,
                                                  std::mt19937_64* rng);

struct SftBatch {
  at::Tensor tokens;          // (B, L) int64, right-padded with pad_id
  at::Tensor attention_mask;  // (B, L) int64, 1 = real token
  at::Tensor loss_mask;       // (B, L) int64, 1 = a target token (see causal_lm_loss)
  int64_t loss_tokens = 0;    // targets counted by causal_lm_loss (masked tokens after position 0)
};

// Pads `rows` of `examples` into one batch.
SftBatch collate_sft(const std::vector<SftExample>& examples, const std::vector<size_t>& rows,
                     int64_t pad_id);

}  // namespace r1kit
