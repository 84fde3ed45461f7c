// The recipe sections of the upstream stages: `pretrain` (causal LM on token
// shards from `r1kit data prepare`) and `sft` (supervised fine-tuning on
// prompt/response or chat JSONL). Hugging Face TrainingArguments / TRL
// SFTConfig names where those have the knob. Plain data: read once, read-only after.
#pragma once

#include <cstdint>
#include <string>

#include "common/config.h"

namespace r1kit {

struct PretrainConfig {
  std::string data;       // shards folder written by `r1kit data prepare`; required
  int64_t seq_len = 256;  // tokens per training row (windows hold seq_len + 1)
  int64_t per_device_train_batch_size = 8;  // rows per micro-batch on each rank (HF)
  int64_t gradient_accumulation_steps = 1;  // micro-batches per optimizer step (HF)
  int64_t max_steps = 1000;                 // optimizer steps of the run (HF)
  double eval_fraction = 0.0;               // share of windows held out for eval loss; 0 = no eval
  int64_t eval_steps = 0;        // evaluate every this many steps; 0 = only at the end (HF)
  int64_t eval_batches = 10;     // micro-batches per evaluation (fewer when the split is small)
  int64_t prefetch_batches = 2;  // batches read ahead on a background thread; 0 = none
  int64_t save_steps = 0;        // checkpoint every this many steps; 0 = at the end only (HF)
  int64_t save_total_limit = 2;  // newest checkpoints kept; 0 = keep all (HF)
  // Activation checkpointing per decoder layer: each layer's activations are
  // recomputed in the backward instead of kept (about a third more compute,
  // a fraction of the activation memory); same gradients (HF).
  bool gradient_checkpointing = false;

  void visit(ConfigVisitor& v);
};

struct SftConfig {
  std::string train_file;  // JSONL of prompt/response or chat examples (sft_data.h); required
  std::string eval_file;   // held-out JSONL; "" = hold out eval_fraction of train_file
  double eval_fraction =
      0.0;  // share of train_file lines held out when eval_file is ""; 0 = no eval
  int64_t max_eval_examples = 500;      // cap on held-out examples
  int64_t max_length = 1024;            // tokens per example, prompt included (TRL)
  std::string truncation = "truncate";  // longer examples: truncate (keep the start) or drop
  int64_t max_tokens_per_batch =
      8192;  // rows * longest row of a micro-batch (padding by token budget)
  int64_t gradient_accumulation_steps = 1;  // micro-batches per optimizer step (HF)
  int64_t num_train_epochs = 1;             // passes over the training examples (HF)
  int64_t max_steps = -1;  // optimizer steps; -1 = num_train_epochs over the data (HF)
  int64_t eval_steps = 0;  // evaluate every this many steps; 0 = at the end of each epoch (HF)
  int64_t early_stopping_patience =
      0;  // stop after this many evaluations without improvement; 0 = never (HF)
  double early_stopping_threshold = 0.0;  // an eval loss must drop by more than this to count (HF)
  bool strict = false;                    // a malformed line is an error instead of a skipped line
  // Prompt/response lines get the tokenizer's post-processor tokens (a Llama-3
  // <|begin_of_text|> in front), as transformers' tokenizer(text) and TRL's
  // SFTTrainer do; chat lines never (their template writes its own markers).
  bool add_special_tokens = true;
  int64_t save_steps = 0;        // checkpoint every this many steps; 0 = at the end only (HF)
  int64_t save_total_limit = 2;  // newest checkpoints kept; 0 = keep all (HF)
  // Activation checkpointing per decoder layer: each layer's activations are
  // recomputed in the backward instead of kept (about a third more compute,
  // a fraction of the activation memory); same gradients (HF).
  bool gradient_checkpointing = false;

  void visit(ConfigVisitor& v);
};

}  // namespace r1kit
