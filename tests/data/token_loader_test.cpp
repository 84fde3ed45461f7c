// The streaming token loader: deterministic order from a seed, every window
// once per epoch, disjoint rank shares, exact resume from a saved state.
#include "data/token_loader.h"

#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "data/token_shards.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

// Two shards whose token i is its global position, so a window shows where it
// came from; written once, removed when the test binary exits.
std::shared_ptr<const ShardSet> counting_shards() {
  struct Written {
    testing::TempFolder folder{"counting-shards"};
    Written() {
      ShardWriter writer(folder.path(), /*vocab_size=*/100000, /*max_shard_tokens=*/1000);
      std::vector<int64_t> first(1000), second(637);
      for (int64_t i = 0; i < 1000; ++i) first[i] = i;
      for (int64_t i = 0; i < 637; ++i) second[i] = 1000 + i;
      writer.add_document(first);
      writer.add_document(second);
      folder.write_file("manifest.json",
                        shard_manifest(writer.dtype(), 100000, 0, writer.finish()).dump());
    }
  };
  static const Written written;
  return ShardSet::open(written.folder.path());
}

TokenLoaderOptions small_options() {
  TokenLoaderOptions options;
  options.seq_len = 8;
  options.batch_size = 4;
  options.seed = 7;
  return options;
}

std::vector<at::Tensor> take(TokenLoader& loader, int n) {
  std::vector<at::Tensor> batches;
  for (int i = 0; i < n; ++i) batches.push_back(loader.next());
  return batches;
}

void expect_same(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i])) << "batch " << i;
}

TEST(TokenLoader, WindowsAreContiguousAndTheOrderFollowsTheSeed) {
  TokenLoader loader(counting_shards(), small_options());
  // (1000 - 1) / 8 + (637 - 1) / 8 windows of 9 tokens.
  EXPECT_EQ(loader.num_windows(), 124 + 79);
  EXPECT_EQ(loader.batches_per_epoch(), 50);
  std::vector<at::Tensor> batches = take(loader, 20);
  for (const auto& batch : batches) {
    ASSERT_EQ(batch.sizes(), (std::vector<int64_t>{4, 9}));
    for (int64_t row = 0; row < 4; ++row) {
      int64_t start = batch[row][0].item<int64_t>();
      EXPECT_EQ((start < 1000 ? start : start - 1000) % 8, 0);
      EXPECT_TRUE(batch[row].equal(at::arange(start, start + 9, at::kLong)));
    }
  }
  TokenLoader same(counting_shards(), small_options());
  expect_same(take(same, 20), batches);
  TokenLoaderOptions other_seed = small_options();
  other_seed.seed = 8;
  TokenLoader other(counting_shards(), other_seed);
  EXPECT_FALSE(other.next().equal(batches[0]));
}

TEST(TokenLoader, EachEpochVisitsEveryWindowOnceInANewOrder) {
  TokenLoader loader(counting_shards(), small_options());
  std::vector<int64_t> epoch_starts[2];
  for (int epoch = 0; epoch < 2; ++epoch) {
    EXPECT_EQ(loader.state(), (LoaderState{epoch, 0}));
    for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
      at::Tensor batch = loader.next();
      for (int64_t row = 0; row < 4; ++row)
        epoch_starts[epoch].push_back(batch[row][0].item<int64_t>());
    }
  }
  EXPECT_EQ(loader.state(), (LoaderState{2, 0}));
  EXPECT_NE(epoch_starts[0], epoch_starts[1]);
  for (const auto& starts : epoch_starts) {
    EXPECT_EQ(std::set<int64_t>(starts.begin(), starts.end()).size(),
              200u);  // 203 windows, 3 left over
  }
}

TEST(TokenLoader, RanksReadDisjointSharesOfTheGlobalBatch) {
  TokenLoaderOptions global = small_options();
  global.batch_size = 12;
  TokenLoader whole(counting_shards(), global);
  std::vector<std::unique_ptr<TokenLoader>> ranks;
  for (int64_t rank = 0; rank < 3; ++rank) {
    TokenLoaderOptions options = small_options();
    options.rank = rank;
    options.world_size = 3;
    ranks.push_back(std::make_unique<TokenLoader>(counting_shards(), options));
  }
  for (int step = 0; step < 2 * whole.batches_per_epoch(); ++step) {
    at::Tensor expected = whole.next();  // (12, 9) = ranks 0, 1, 2 one after another
    for (int64_t rank = 0; rank < 3; ++rank) {
      EXPECT_TRUE(ranks[rank]->next().equal(expected.narrow(0, rank * 4, 4)))
          << "step " << step << " rank " << rank;
    }
  }
}

TEST(TokenLoader, ResumedLoaderReadsTheSameNextBatches) {
  for (int64_t prefetch : {0, 2}) {
    TokenLoaderOptions options = small_options();
    options.prefetch = prefetch;
    TokenLoader uninterrupted(counting_shards(), options);
    std::vector<at::Tensor> all = take(uninterrupted, 70);  // crosses the epoch boundary at 50

    TokenLoader first(counting_shards(), options);
    take(first, 45);
    nlohmann::json saved = first.state().to_json();
    EXPECT_EQ(saved, (nlohmann::json{{"epoch", 0}, {"cursor", 180}}));

    TokenLoader resumed(counting_shards(), options);
    resumed.next();  // read ahead and discarded by restore
    resumed.restore(LoaderState::from_json(saved));
    expect_same(take(resumed, 25), std::vector<at::Tensor>(all.begin() + 45, all.end()));
  }
}

TEST(TokenLoader, TrainAndEvalSplitsPartitionTheWindows) {
  TokenLoaderOptions train = small_options(), eval = small_options();
  train.split = "train";
  eval.split = "eval";
  train.eval_fraction = eval.eval_fraction = 0.2;
  train.shuffle = eval.shuffle = false;
  train.batch_size = eval.batch_size = 1;
  TokenLoader train_loader(counting_shards(), train), eval_loader(counting_shards(), eval);
  EXPECT_EQ(train_loader.num_windows() + eval_loader.num_windows(), 203);
  EXPECT_GT(eval_loader.num_windows(), 20);
  EXPECT_LT(eval_loader.num_windows(), 70);
  EXPECT_EQ(TokenLoader::count_windows(*counting_shards(), eval), eval_loader.num_windows());
  std::set<int64_t> starts;
  for (int64_t i = 0; i < train_loader.num_windows(); ++i)
    starts.insert(train_loader.next()[0][0].item<int64_t>());
  for (int64_t i = 0; i < eval_loader.num_windows(); ++i)
    starts.insert(eval_loader.next()[0][0].item<int64_t>());
  EXPECT_EQ(starts.size(), 203u);
}

TEST(TokenLoader, TooLittleDataAndBadStatesAreErrors) {
  TokenLoaderOptions options = small_options();
  options.batch_size = 300;
  EXPECT_THROW(TokenLoader(counting_shards(), options), Error);
  TokenLoader loader(counting_shards(), small_options());
  EXPECT_THROW(loader.restore({0, 3}), Error);    // not a multiple of the global batch
  EXPECT_THROW(loader.restore({0, 200}), Error);  // past the last full batch
  EXPECT_EQ(loader.next().size(0), 4);            // still usable
}

}  // namespace
}  // namespace r1kit
