#include "learner/learner_lanes.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <exception>
#include <future>
#include <limits>

#include "common/thread_limit.h"
#include "common/thread_pool.h"

namespace r1kit {
namespace {

void add_gradients(const std::vector<at::Tensor>& parameters, std::vector<at::Tensor> gradients) {
  TORCH_CHECK(gradients.size() == parameters.size(), "LearnerLanes: ", gradients.size(),
              " gradients for ", parameters.size(), " parameters");
  for (size_t j = 0; j < parameters.size(); ++j) {
    if (!gradients[j].defined()) continue;
    at::Tensor& grad = parameters[j].mutable_grad();
    if (grad.defined()) {
      grad.add_(gradients[j]);
    } else {
      // Own storage, as autograd's accumulation gives: zero_grad detaches .grad in place, which a
      // view refuses.
      grad = gradients[j].is_view() ? gradients[j].clone() : std::move(gradients[j]);
    }
  }
}

}  // namespace

LearnerLanes::LearnerLanes(const at::Device& device, int64_t gradient_bytes) {
  if (!device.is_cpu()) return;
  const int64_t threads = at::get_num_threads();
  lanes_ = std::clamp<int64_t>(threads, 1, kMaxLanes);
  while (lanes_ > 1 && lanes_ * gradient_bytes > kLaneGradientBudget) --lanes_;
  threads_per_lane_ = std::max<int64_t>(1, threads / lanes_);
  if (lanes_ > 1) pool_ = std::make_unique<ThreadPool>(static_cast<size_t>(lanes_ - 1));
}

LearnerLanes::~LearnerLanes() = default;

std::vector<std::pair<size_t, size_t>> LearnerLanes::spread(
    std::vector<std::pair<size_t, size_t>> plan, const RangeCost& cost) const {
  const RangeCost work =
      cost ? cost : [](size_t begin, size_t end) { return static_cast<double>(end - begin); };
  while (static_cast<int64_t>(plan.size()) < lanes_) {
    auto costliest = plan.end();
    double most = -1.0;
    for (auto range = plan.begin(); range != plan.end(); ++range) {
      if (range->second - range->first < 2) continue;  // a single sample cannot be split
      const double value = work(range->first, range->second);
      if (value > most) most = value, costliest = range;
    }
    if (costliest == plan.end()) break;
    // The split whose costlier half is cheapest (the earliest on a tie).
    size_t middle = costliest->first + 1;
    double best = std::numeric_limits<double>::infinity();
    for (size_t at = costliest->first + 1; at < costliest->second; ++at) {
      const double larger = std::max(work(costliest->first, at), work(at, costliest->second));
      if (larger < best) best = larger, middle = at;
    }
    const std::pair<size_t, size_t> second_half{middle, costliest->second};
    costliest->second = middle;
    plan.insert(costliest + 1, second_half);
  }
  return plan;
}

void LearnerLanes::run(int64_t count,
                       const std::function<std::vector<at::Tensor>(int64_t)>& gradients_of,
                       const std::vector<at::Tensor>& parameters) {
  for (int64_t first = 0; first < count; first += lanes_) {
    const int64_t together = std::min(lanes_, count - first);
    std::vector<std::future<std::vector<at::Tensor>>> others;
    for (int64_t lane = 1; lane < together; ++lane) {
      others.push_back(pool_->submit([&, index = first + lane] {
        ThreadLimit limit(threads_per_lane_);
        return gradients_of(index);
      }));
    }
    std::vector<std::vector<at::Tensor>> results(together);
    std::exception_ptr failure;
    try {
      ThreadLimit limit(together > 1 ? threads_per_lane_ : 0);
      results[0] = gradients_of(first);
    } catch (...) {
      failure = std::current_exception();
    }
    for (int64_t lane = 1; lane < together; ++lane) {
      try {
        results[lane] = others[lane - 1].get();
      } catch (...) {
        if (!failure) failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
    for (auto& gradients : results) add_gradients(parameters, std::move(gradients));
  }
}

}  // namespace r1kit
