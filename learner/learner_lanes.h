// Runs the learner's micro-batches side by side on CPU: one lane per core, each
// lane's ops single-threaded (a 128-wide model's ops are too small to split
// over cores well). Gradients come back per micro-batch and are added into the
// parameters' .grad in micro-batch order, the same sum that one backward per
// micro-batch in that order produces. Used by one trainer thread at a time.
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace r1kit {

class ThreadPool;

class LearnerLanes {
 public:
  // One lane on GPU; on CPU one per ATen thread, at most kMaxLanes, and no
  // more than keep their gradients (`gradient_bytes` each: every lane holds a
  // full set until it is added in) within kLaneGradientBudget. A model of
  // real size gets one lane whose ops use every thread.
  explicit LearnerLanes(const at::Device& device, int64_t gradient_bytes = 0);
  static constexpr int64_t kLaneGradientBudget = int64_t{1} << 30;
  ~LearnerLanes();
  static constexpr int64_t kMaxLanes = 8;

  int64_t size() const { return lanes_; }

  // The work of the samples [begin, end) in one micro-batch, in any unit.
  using RangeCost = std::function<double(size_t begin, size_t end)>;

  // `plan`: [begin, end) sample ranges of the micro-batches. Splits the
  // costliest range in two until there is one per lane (or every range is one
  // sample): smaller micro-batches stay within the token budget. The split
  // point evens out `cost` between the halves; without one, the sample count.
  std::vector<std::pair<size_t, size_t>> spread(std::vector<std::pair<size_t, size_t>> plan,
                                                const RangeCost& cost = {}) const;

  // Calls gradients_of(i) for i in [0, count), up to size() at once, each on
  // its own thread. gradients_of returns one gradient per entry of
  // `parameters` (undefined: none) and must not touch .grad itself; the
  // gradients are added into `parameters`' .grad in order i = 0, 1, ...
  // Rethrows the first exception after every lane has stopped.
  void run(int64_t count, const std::function<std::vector<at::Tensor>(int64_t)>& gradients_of,
           const std::vector<at::Tensor>& parameters);

 private:
  int64_t lanes_ = 1;
  int64_t threads_per_lane_ = 0;      // ATen threads of each lane when lanes run together
  std::unique_ptr<ThreadPool> pool_;  // lanes 1..size()-1; lane 0 is the caller
};

}  // namespace r1kit
