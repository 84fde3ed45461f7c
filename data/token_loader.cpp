#include "data/token_loader.h"

#include <random>

#include "common/error.h"

namespace r1kit {
namespace {

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Whether window `index` (in corpus order, before any split) is held out.
bool held_out(uint64_t index, double fraction) {
  return static_cast<double>(mix64(index ^ 0x5EED5EED5EED5EEDull) % 1000000) < fraction * 1000000.0;
}

int64_t stride_windows(int64_t tokens, int64_t seq_len) {
  return tokens > seq_len ? (tokens - 1) / seq_len : 0;
}

void check_options(const TokenLoaderOptions& o) {
  TORCH_CHECK(o.seq_len > 0 && o.batch_size > 0, "seq_len ", o.seq_len, " and batch_size ",
              o.batch_size, " must be positive");
  TORCH_CHECK(o.world_size > 0 && o.rank >= 0 && o.rank < o.world_size, "rank ", o.rank,
              " of world size ", o.world_size);
  TORCH_CHECK(o.split == "all" || o.split == "train" || o.split == "eval",
              "split must be all, train or eval, got ", o.split);
  TORCH_CHECK(o.eval_fraction >= 0.0 && o.eval_fraction <= 1.0, "eval_fraction ", o.eval_fraction);
}

bool in_split(uint64_t index, const TokenLoaderOptions& o) {
  if (o.split == "all") return true;
  return held_out(index, o.eval_fraction) == (o.split == "eval");
}

}  // namespace

LoaderState LoaderState::from_json(const nlohmann::json& json) {
  try {
    return {json.at("epoch").get<int64_t>(), json.at("cursor").get<int64_t>()};
  } catch (const nlohmann::json::exception& e) {
    throw_data_error(std::string("loader state: ") + e.what());
  }
}

int64_t TokenLoader::count_windows(const ShardSet& shards, const TokenLoaderOptions& options) {
  check_options(options);
  if (options.split == "all") {
    int64_t count = 0;
    for (size_t s = 0; s < shards.num_shards(); ++s)
      count += stride_windows(shards.shard_tokens(s), options.seq_len);
    return count;
  }
  int64_t count = 0;
  uint64_t index = 0;
  for (size_t s = 0; s < shards.num_shards(); ++s) {
    int64_t n = stride_windows(shards.shard_tokens(s), options.seq_len);
    for (int64_t w = 0; w < n; ++w) count += in_split(index++, options);
  }
  return count;
}

TokenLoader::TokenLoader(std::shared_ptr<const ShardSet> shards, TokenLoaderOptions options)
    : shards_(std::move(shards)), options_(std::move(options)) {
  check_options(options_);
  uint64_t index = 0;
  for (size_t s = 0; s < shards_->num_shards(); ++s) {
    int64_t n = stride_windows(shards_->shard_tokens(s), options_.seq_len);
    for (int64_t w = 0; w < n; ++w) {
      if (in_split(index++, options_))
        windows_.push_back({static_cast<uint32_t>(s), w * options_.seq_len});
    }
  }
  int64_t global_batch = options_.batch_size * options_.world_size;
  if (num_windows() < global_batch) {
    throw_config_error("the " + options_.split + " split has " + std::to_string(num_windows()) +
                       " windows of " + std::to_string(options_.seq_len + 1) + " tokens (" +
                       std::to_string(shards_->total_tokens()) +
                       " tokens in all), fewer than one global batch of " +
                       std::to_string(global_batch) +
                       ": prepare more text or lower seq_len or the batch size");
  }
  start_prefetch();
}

TokenLoader::~TokenLoader() { stop_prefetch(); }

int64_t TokenLoader::batches_per_epoch() const {
  return num_windows() / (options_.batch_size * options_.world_size);
}

const std::vector<uint64_t>& TokenLoader::order_of(int64_t epoch) {
  if (order_epoch_ == epoch) return order_;
  order_.resize(windows_.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
  if (options_.shuffle) {
    // Fisher-Yates with mt19937_64 draws taken modulo (bias < n / 2^64): the
    // same order on every platform, unlike std::shuffle.
    std::mt19937_64 rng(mix64(options_.seed) ^
                        mix64(static_cast<uint64_t>(epoch) + 0x243F6A8885A308D3ull));
    for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng() % i]);
  }
  order_epoch_ = epoch;
  return order_;
}

TokenLoader::Prefetched TokenLoader::make_batch(const LoaderState& state) {
  const int64_t global_batch = options_.batch_size * options_.world_size;
  TORCH_CHECK(state.epoch >= 0 && state.cursor >= 0 && state.cursor % global_batch == 0 &&
                  state.cursor / global_batch < batches_per_epoch(),
              "loader state {epoch ", state.epoch, ", cursor ", state.cursor, "} does not fit ",
              num_windows(), " windows in global batches of ", global_batch);
  const auto& order = order_of(state.epoch);
  const int64_t width = options_.seq_len + 1;
  at::Tensor batch = at::empty({options_.batch_size, width}, at::kLong);  // (B, seq_len + 1)
  int64_t* out = batch.data_ptr<int64_t>();
  for (int64_t row = 0; row < options_.batch_size; ++row) {
    const Window& window =
        windows_[order[state.cursor + options_.rank * options_.batch_size + row]];
    shards_->read(window.shard, window.start, width, out + row * width);
  }
  LoaderState next{state.epoch, state.cursor + global_batch};
  if (next.cursor / global_batch >= batches_per_epoch()) next = {state.epoch + 1, 0};
  return {batch, next};
}

at::Tensor TokenLoader::next() {
  if (options_.prefetch == 0) {
    Prefetched item = make_batch(state_);
    state_ = item.next;
    return item.batch;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || error_; });
  if (ready_.empty()) std::rethrow_exception(error_);
  Prefetched item = std::move(ready_.front());
  ready_.pop_front();
  state_ = item.next;
  changed_.notify_all();
  return item.batch;
}

void TokenLoader::restore(const LoaderState& state) {
  const int64_t global_batch = options_.batch_size * options_.world_size;
  if (state.epoch < 0 || state.cursor < 0 || state.cursor % global_batch != 0 ||
      state.cursor / global_batch >= batches_per_epoch()) {
    throw_data_error("loader state {epoch " + std::to_string(state.epoch) + ", cursor " +
                     std::to_string(state.cursor) +
                     "} does not fit this data: " + std::to_string(num_windows()) +
                     " windows in global batches of " + std::to_string(global_batch));
  }
  stop_prefetch();
  state_ = state;
  start_prefetch();
}

void TokenLoader::start_prefetch() {
  if (options_.prefetch == 0) return;
  ready_.clear();
  error_ = nullptr;
  stopping_ = false;
  produce_at_ = state_;
  worker_ = std::thread([this] { prefetch_loop(); });
}

void TokenLoader::stop_prefetch() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
  ready_.clear();
}

void TokenLoader::prefetch_loop() {
  while (true) {
    LoaderState at;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] {
        return stopping_ || static_cast<int64_t>(ready_.size()) < options_.prefetch;
      });
      if (stopping_) return;
      at = produce_at_;
    }
    try {
      Prefetched item = make_batch(at);  // outside the lock: the consumer keeps popping
      std::lock_guard<std::mutex> lock(mutex_);
      produce_at_ = item.next;
      ready_.push_back(std::move(item));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      changed_.notify_all();
      return;
    }
    changed_.notify_all();
  }
}

}  // namespace r1kit
