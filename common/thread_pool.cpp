#include "common/thread_pool.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <thread>

namespace r1kit {

ThreadPool::ThreadPool(size_t threads)
    : size_(threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : threads),
      pool_(std::make_unique<boost::asio::thread_pool>(size_)) {}

ThreadPool::~ThreadPool() { join(); }

void ThreadPool::post(std::function<void()> task) { boost::asio::post(*pool_, std::move(task)); }

void ThreadPool::join() { pool_->join(); }

}  // namespace r1kit
