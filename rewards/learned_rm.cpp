// `learned_rm`: scores prompt + completion with a reward-model checkpoint, a
// backbone and a scalar `score` head read at the last real token (Ouyang et al.
// 2022, "Training language models to follow instructions with human feedback";
// Hugging Face's *ForSequenceClassification with num_labels 1). The text is
// encoded with the model folder's own tokenizer, so the reward model may use a
// vocabulary different from the policy's. Batched: one forward pass per
// `batch_size` samples, shortest first, right-padded; a RewardSet gives the whole
// batch one deadline, so a large model needs the entry's timeout_seconds raised.
// Thread-safe: the one model instance runs behind a mutex; tokenisation runs outside it.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <mutex>

#include "common/config.h"
#include "common/error.h"
#include "policy/checkpoint.h"
#include "policy/decoder_layer.h"
#include "policy/tokenizer.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

// An affine shift of the raw score, e.g. the mean and std of the model's scores
// on its training data, so rewards from different models sit on one scale.
struct LearnedRmNormalize {
  double mean = 0.0;  // subtracted from the raw score; 0 = no shift
  double std = 1.0;   // the shifted score is divided by it; 1 = no scaling

  void visit(ConfigVisitor& v) {
    v.field("mean", mean);
    v.field("std", std, {.min = 0.0, .min_exclusive = true});
  }
};

struct LearnedRmOptions {
  std::string path;        // the reward model's Hugging Face folder (config.json, weights with
                           // score.weight, tokenizer.json); required
  int64_t batch_size = 8;  // sequences per forward pass
  int64_t max_length =
      0;  // tokens per sequence, the start dropped beyond it; 0 = max_position_embeddings
  std::string device = "cpu";     // "cpu", "cuda" or "cuda:N"
  std::string dtype = "float32";  // the model's compute dtype: float32 | bfloat16
  LearnedRmNormalize normalize;   // score = (raw - mean) / std; absent = the raw score

  void visit(ConfigVisitor& v) {
    v.field("path", path, {.required = true});
    v.field("batch_size", batch_size, {.min = 1.0});
    v.field("max_length", max_length, {.min = 0.0});
    v.field("device", device);
    v.field("dtype", dtype, {.choices = {"float32", "bfloat16"}});
    v.section("normalize", normalize);
    if (path.empty()) v.fail("path", "must name a reward-model folder");
  }
};

at::Device parse_device(const std::string& name, const std::string& source) {
  try {
    at::Device device(name);
    if (device.is_cuda() && !at::hasCUDA()) {
      throw_config_error(source + ".device: \"" + name +
                         "\" but this build or machine has no CUDA");
    }
    if (!device.is_cpu() && !device.is_cuda()) {
      throw_config_error(source + ".device: expected cpu or cuda[:N], got \"" + name + "\"");
    }
    if (device.is_cuda()) disable_cudnn_attention();
    return device;
  } catch (const c10::Error&) {
    throw_config_error(source + ".device: expected cpu or cuda[:N], got \"" + name + "\"");
  }
}

class LearnedRewardModel : public RewardFn {
 public:
  LearnedRewardModel(const nlohmann::json& options, const std::string& source)
      : options_(read_config<LearnedRmOptions>(options, source)),
        device_(parse_device(options_.device, source)) {
    const std::string where = source + ".path: " + options_.path;
    try {
      tokenizer_ = load_tokenizer(options_.path);
      PretrainedWithHead loaded =
          load_pretrained_with_head(options_.path, ScalarHeadKind::kReward, device_,
                                    options_.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat);
      model_ = loaded.model;
      head_ = loaded.head;
      if (loaded.head_is_new) {
        throw_config_error(
            "the folder has no reward head (score.weight): it is not a reward model");
      }
    } catch (const Error& e) {
      throw with_context(e, where);
    }
    const ModelConfig& config = model_->config();
    if (tokenizer_->vocab_size() > config.vocab_size) {
      throw_config_error(where + ": the tokenizer has " + std::to_string(tokenizer_->vocab_size()) +
                         " tokens, the model's embedding only " +
                         std::to_string(config.vocab_size));
    }
    max_length_ = options_.max_length > 0 ? options_.max_length : config.max_position_embeddings;
    pad_id_ = tokenizer_->pad_id().value_or(tokenizer_->eos_id().value_or(0));
    model_->eval();
    head_->eval();
  }

  RewardResult score(const Sample& sample) const override {
    return score_batch({sample}, Deadline::max()).front();
  }

  bool prefers_batches() const override { return true; }

  std::vector<RewardResult> score_batch(const std::vector<Sample>& samples,
                                        Deadline deadline) const override {
    const size_t count = samples.size();
    std::vector<RewardResult> results(count);
    std::vector<std::vector<int64_t>> ids(count);
    std::vector<size_t> order;  // samples with tokens, shortest first: little padding per batch
    for (size_t n = 0; n < count; ++n) {
      const Sample& s = samples[n];
      ids[n] = tokenizer_->encode(s.prompt + s.completion, /*add_special_tokens=*/true);
      bool truncated = static_cast<int64_t>(ids[n].size()) > max_length_;
      if (truncated) ids[n].erase(ids[n].begin(), ids[n].end() - max_length_);
      results[n].info = {{"tokens", ids[n].size()}, {"truncated", truncated}};
      if (!ids[n].empty()) order.push_back(n);  // an empty text has no last token: not applicable
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return ids[a].size() < ids[b].size(); });

    for (size_t start = 0; start < order.size();
         start += static_cast<size_t>(options_.batch_size)) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw RewardTimeout("learned_rm: deadline passed after " + std::to_string(start) + " of " +
                            std::to_string(order.size()) + " samples");
      }
      const size_t end = std::min(order.size(), start + static_cast<size_t>(options_.batch_size));
      std::vector<size_t> rows(order.begin() + static_cast<std::ptrdiff_t>(start),
                               order.begin() + static_cast<std::ptrdiff_t>(end));
      std::vector<float> raw = forward(rows, ids);
      for (size_t i = 0; i < rows.size(); ++i) {
        const LearnedRmNormalize& norm = options_.normalize;
        results[rows[i]].value = (static_cast<double>(raw[i]) - norm.mean) / norm.std;
      }
    }
    return results;
  }

 private:
  // Raw scores of the sequences ids[rows[i]], right-padded into one batch.
  std::vector<float> forward(const std::vector<size_t>& rows,
                             const std::vector<std::vector<int64_t>>& ids) const {
    const int64_t batch = static_cast<int64_t>(rows.size());
    int64_t longest = 0;
    for (size_t r : rows) longest = std::max<int64_t>(longest, static_cast<int64_t>(ids[r].size()));
    at::Tensor tokens = at::full({batch, longest}, pad_id_, at::kLong);  // (B, T)
    at::Tensor mask = at::zeros({batch, longest}, at::kLong);            // (B, T) 1 = real token
    for (int64_t b = 0; b < batch; ++b) {
      const std::vector<int64_t>& row = ids[rows[static_cast<size_t>(b)]];
      const int64_t length = static_cast<int64_t>(row.size());
      tokens[b].narrow(0, 0, length).copy_(at::tensor(row, at::kLong));
      mask[b].narrow(0, 0, length).fill_(1);
    }
    std::lock_guard lock(mutex_);
    c10::InferenceMode inference;
    tokens = tokens.to(device_);
    mask = mask.to(device_);
    at::Tensor hidden = model_->forward_hidden(tokens, mask);  // (B, T, H)
    at::Tensor scores =
        head_->at_last_token(hidden, mask).to(at::kCPU).contiguous();  // (B) float32
    const float* data = scores.data_ptr<float>();
    return std::vector<float>(data, data + batch);
  }

  LearnedRmOptions options_;
  at::Device device_;
  std::unique_ptr<Tokenizer> tokenizer_;
  int64_t max_length_ = 0;
  int64_t pad_id_ = 0;
  mutable std::mutex mutex_;  // guards model_ and head_: modules run one forward at a time
  mutable Transformer model_{nullptr};
  mutable ScalarHead head_{nullptr};
};

}  // namespace

REGISTER_REWARD("learned_rm", LearnedRewardModel);

}  // namespace r1kit
