#include "policy/kv_cache.h"

namespace r1kit {

KvCache::KvCache(const ModelConfig& config, int64_t rows, int64_t max_length,
                 at::TensorOptions options)
    : max_length_(max_length), lengths_(rows, 0) {
  TORCH_CHECK(rows > 0 && max_length > 0,
              "KvCache needs rows > 0 and max_length > 0, got rows=", rows,
              " max_length=", max_length);
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    keys_.push_back(
        at::zeros({rows, config.num_key_value_heads, max_length, config.head_size()}, options));
    values_.push_back(
        at::zeros({rows, config.num_key_value_heads, max_length, config.head_size()}, options));
  }
}

void KvCache::check_row(int64_t row) const {
  TORCH_CHECK(row >= 0 && row < rows(), "KvCache row ", row, " out of range [0, ", rows(), ")");
}

int64_t KvCache::length(int64_t row) const {
  check_row(row);
  return lengths_[row];
}

void KvCache::reset_row(int64_t row) {
  check_row(row);
  lengths_[row] = 0;
}

void KvCache::reset() { std::fill(lengths_.begin(), lengths_.end(), 0); }

void KvCache::advance(int64_t row, int64_t count) {
  check_row(row);
  TORCH_CHECK(count >= 0 && lengths_[row] + count <= max_length_, "KvCache row ", row,
              " of length ", lengths_[row], " cannot grow by ", count, " past max_length ",
              max_length_);
  lengths_[row] += count;
}

void KvCache::copy_row(int64_t source_row, const std::vector<int64_t>& destination_rows) {
  check_row(source_row);
  if (destination_rows.empty()) return;
  for (int64_t row : destination_rows) {
    check_row(row);
    TORCH_CHECK(row != source_row, "KvCache::copy_row: destination rows include the source row ",
                source_row);
  }
  const int64_t length = lengths_[source_row];
  if (length > 0) {
    const auto destinations = at::tensor(destination_rows, at::TensorOptions().dtype(at::kLong))
                                  .to(keys_.front().device());
    const auto count = static_cast<int64_t>(destination_rows.size());
    for (auto* storage : {&keys_, &values_}) {
      for (at::Tensor& layer : *storage) {
        at::Tensor prefix = layer.narrow(2, 0, length);  // (R, KV, length, D)
        at::Tensor source = prefix.narrow(0, source_row, 1).expand({count, -1, -1, -1});
        prefix.index_copy_(0, destinations, source);
      }
    }
  }
  for (int64_t row : destination_rows) lengths_[row] = length;
}

}  // namespace r1kit
