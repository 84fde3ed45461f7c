// Keys and values of past tokens for batched generation: per layer one
// preallocated (rows, num_kv_heads, max_length, head_dim) tensor pair and a
// length per row. A row holds one sequence; group sampling prefills a prompt
// once and fans it out to G rows with copy_row. Not thread-safe; owned by the
// rollout engine, written only by Transformer::forward_cached.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "policy/model_config.h"

namespace r1kit {

class KvCache {
 public:
  // Allocates (zeroed) storage for `rows` sequences of up to `max_length`
  // tokens of a model shaped like `config`, with `options` (device, dtype).
  KvCache(const ModelConfig& config, int64_t rows, int64_t max_length,
          at::TensorOptions options = at::TensorOptions().dtype(at::kFloat));

  int64_t rows() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t max_length() const { return max_length_; }
  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }
  // Tokens held by each row.
  const std::vector<int64_t>& lengths() const { return lengths_; }
  int64_t length(int64_t row) const;

  // Empties `row` for reuse (its storage is kept, not cleared).
  void reset_row(int64_t row);
  // Empties every row.
  void reset();
  // Copies the `source_row`'s tokens into each of `destination_rows` (which must
  // not include it) and gives them its length: one prefill shared by a group.
  void copy_row(int64_t source_row, const std::vector<int64_t>& destination_rows);

  // The storage of one layer, (rows, num_kv_heads, max_length, head_dim).
  at::Tensor& keys(int64_t layer) { return keys_.at(layer); }
  at::Tensor& values(int64_t layer) { return values_.at(layer); }
  // Adds `count` tokens to the length of `row`, after they were written.
  void advance(int64_t row, int64_t count);

 private:
  void check_row(int64_t row) const;

  int64_t max_length_;
  std::vector<at::Tensor> keys_;    // per layer (R, KV, L, D)
  std::vector<at::Tensor> values_;  // per layer (R, KV, L, D)
  std::vector<int64_t> lengths_;    // (R)
};

}  // namespace r1kit
