// The Asio pool runs every task, returns results and exceptions through
// futures, and seeded generators are reproducible per purpose.
#include "common/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>

#include "common/seed.h"

namespace r1kit {
namespace {

TEST(ThreadPool, RunsEveryTaskAndReturnsResults) {
  ThreadPool pool(2);
  std::atomic<int> count{0};
  std::vector<std::future<int>> results;
  for (int i = 0; i < 100; ++i) {
    results.push_back(pool.submit([i, &count] {
      ++count;
      return i * i;
    }));
  }
  int sum = 0;
  for (auto& result : results) sum += result.get();
  EXPECT_EQ(count.load(), 100);
  EXPECT_EQ(sum, 328350);
}

TEST(ThreadPool, ExceptionsTravelThroughTheFuture) {
  ThreadPool pool(1);
  auto failing = pool.submit([]() -> int { throw std::runtime_error("boom"); });
  EXPECT_THROW(failing.get(), std::runtime_error);
  EXPECT_EQ(pool.submit([] { return 7; }).get(), 7);
}

TEST(Seed, SamePurposeSameStreamDifferentPurposeDifferentStream) {
  auto a = make_rng(42, "environment");
  auto b = make_rng(42, "environment");
  auto c = make_rng(42, "sampling");
  auto d = make_rng(43, "environment");
  uint64_t first_a = a();
  EXPECT_EQ(first_a, b());
  EXPECT_NE(first_a, c());
  EXPECT_NE(first_a, d());
}

}  // namespace
}  // namespace r1kit
