// A fixed pool of worker threads on Boost.Asio, shared by reward scoring,
// rollout workers and tokenisation. post() and submit() are thread-safe; the
// destructor waits for the queued work to finish.
#pragma once

#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <type_traits>

namespace boost::asio {
class thread_pool;
}

namespace r1kit {

class ThreadPool {
 public:
  // `threads` = 0 uses the number of hardware threads.
  explicit ThreadPool(size_t threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return size_; }
  void post(std::function<void()> task);

  // Runs `task` on the pool; the future carries its result or exception.
  template <class Task>
  auto submit(Task task) -> std::future<std::invoke_result_t<Task>> {
    using Result = std::invoke_result_t<Task>;
    auto packaged = std::make_shared<std::packaged_task<Result()>>(std::move(task));
    std::future<Result> future = packaged->get_future();
    post([packaged] { (*packaged)(); });
    return future;
  }

  // Waits for every task posted so far; the pool cannot be used afterwards.
  void join();

  boost::asio::thread_pool& asio_pool() { return *pool_; }

 private:
  size_t size_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
};

}  // namespace r1kit
