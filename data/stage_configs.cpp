#include "data/stage_configs.h"

namespace r1kit {

void PretrainConfig::visit(ConfigVisitor& v) {
  v.field("data", data, {.required = true});
  v.field("seq_len", seq_len, {.min = 1.0});
  v.field("per_device_train_batch_size", per_device_train_batch_size, {.min = 1.0});
  v.field("gradient_accumulation_steps", gradient_accumulation_steps, {.min = 1.0});
  v.field("max_steps", max_steps, {.min = 1.0});
  v.field("eval_fraction", eval_fraction, {.min = 0.0, .max = 1.0});
  v.field("eval_steps", eval_steps, {.min = 0.0});
  v.field("eval_batches", eval_batches, {.min = 1.0});
  v.field("prefetch_batches", prefetch_batches, {.min = 0.0});
  v.field("save_steps", save_steps, {.min = 0.0});
  v.field("save_total_limit", save_total_limit, {.min = 0.0});
  v.field("gradient_checkpointing", gradient_checkpointing);
  if (eval_fraction >= 1.0)
    v.fail("eval_fraction", "must be below 1: nothing would be left to train on");
}

void SftConfig::visit(ConfigVisitor& v) {
  v.field("train_file", train_file, {.required = true});
  v.field("eval_file", eval_file);
  v.field("eval_fraction", eval_fraction, {.min = 0.0, .max = 1.0});
  v.field("max_eval_examples", max_eval_examples, {.min = 1.0});
  v.field("max_length", max_length, {.min = 2.0});
  v.field("truncation", truncation, {.choices = {"truncate", "drop"}});
  v.field("max_tokens_per_batch", max_tokens_per_batch, {.min = 1.0});
  v.field("gradient_accumulation_steps", gradient_accumulation_steps, {.min = 1.0});
  v.field("num_train_epochs", num_train_epochs, {.min = 1.0});
  v.field("max_steps", max_steps, {.min = -1.0});
  v.field("eval_steps", eval_steps, {.min = 0.0});
  v.field("early_stopping_patience", early_stopping_patience, {.min = 0.0});
  v.field("early_stopping_threshold", early_stopping_threshold, {.min = 0.0});
  v.field("strict", strict);
  v.field("add_special_tokens", add_special_tokens);
  v.field("save_steps", save_steps, {.min = 0.0});
  v.field("save_total_limit", save_total_limit, {.min = 0.0});
  v.field("gradient_checkpointing", gradient_checkpointing);
  if (max_steps == 0) v.fail("max_steps", "must be positive, or -1 for num_train_epochs");
  if (max_tokens_per_batch < max_length) {
    v.fail("max_tokens_per_batch", "(" + std::to_string(max_tokens_per_batch) +
                                       ") must hold one example of " + "max_length (" +
                                       std::to_string(max_length) + ")");
  }
  if (!eval_file.empty() && eval_fraction > 0.0) {
    v.fail("eval_fraction", "give eval_file or eval_fraction, not both");
  }
  if (early_stopping_patience > 0 && eval_file.empty() && eval_fraction == 0.0) {
    v.fail("early_stopping_patience", "needs an eval split (eval_file or eval_fraction)");
  }
}

}  // namespace r1kit
