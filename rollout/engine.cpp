#include "rollout/engine.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <mutex>
#include <random>

#include "common/elapsed.h"
#include "common/error.h"
#include "common/thread_limit.h"
#include "rollout/generation_config.h"
#include "rollout/sampler.h"

namespace r1kit {
namespace {

using Clock = SteadyClock;

// One sequence being generated in a cache row.
struct LiveSequence {
  Completion completion;
  std::mt19937_64 rng;
  std::optional<StreamDecoder> decoder;
  int64_t prompt_length = 0;
  size_t streamed = 0;  // bytes of completion.text already given to the text callback
};

// The length of the longest suffix of `text` that starts some stop string: text
// that may still turn out to be a stop string and must not be streamed yet.
size_t pending_stop_prefix(const std::string& text, const std::vector<std::string>& stop_strings) {
  size_t longest = 0;
  for (const auto& stop : stop_strings) {
    for (size_t length = std::min(stop.size() - 1, text.size()); length > longest; --length) {
      if (text.compare(text.size() - length, length, stop, 0, length) == 0) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}

// A generator per (seed, prompt, sample): its draws do not depend on batching.
std::mt19937_64 sequence_rng(int64_t seed, int64_t prompt_index, int64_t sample_index) {
  std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                         static_cast<uint32_t>(prompt_index), static_cast<uint32_t>(sample_index),
                         0x72316bu};
  return std::mt19937_64(sequence);
}

double next_uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);  // [0, 1), 53 bits
}

}  // namespace

void PolicyWeights::publish(const std::function<void(Transformer&)>& update) {
  std::unique_lock lock(mutex);
  {
    std::lock_guard plans_lock(plans_mutex_);
    plans_.clear();  // dropped before the update so a failed update leaves none stale
  }
  update(model);
  version.fetch_add(1);
}

void PolicyWeights::release_decode_plans() {
  std::lock_guard plans_lock(plans_mutex_);
  plans_.clear();
}

std::shared_ptr<const DecodePlan> PolicyWeights::decode_plan(at::ScalarType dtype) {
  std::lock_guard plans_lock(plans_mutex_);
  auto& plan = plans_[dtype];
  if (!plan) {
    c10::InferenceMode guard;
    plan = std::make_shared<const DecodePlan>(*model, dtype);
  }
  return plan;
}

void EngineOptions::visit(ConfigVisitor& v) {
  v.field("max_batch_size", max_batch_size, {.min = 1.0});
  v.field("max_length", max_length, {.min = 0.0});
  v.field("compute_dtype", compute_dtype, {.choices = {"float32", "bfloat16"}});
  v.field("num_threads", num_threads, {.min = 0.0});
}

const char* finish_reason_name(FinishReason reason) {
  return reason == FinishReason::kStop ? "stop" : "length";
}

RolloutEngine::RolloutEngine(std::shared_ptr<PolicyWeights> weights, const Tokenizer* tokenizer,
                             EngineOptions options)
    : weights_(std::move(weights)), tokenizer_(tokenizer), options_(options) {
  TORCH_CHECK(weights_ && weights_->model, "RolloutEngine needs a model");
  if (options_.max_batch_size < 1) throw_usage_error("max_batch_size must be >= 1");
  compute_dtype_ = rollout_dtype_from_name(options_.compute_dtype, "compute_dtype");
}

std::vector<Completion> RolloutEngine::generate(const std::vector<std::vector<int64_t>>& prompts,
                                                const SamplingParams& params,
                                                const TextCallback& on_text,
                                                int64_t first_prompt_index) {
  std::shared_lock weights_lock(weights_->mutex);
  Transformer& model = weights_->model;
  const ModelConfig& config = model->config();
  params.validate(config.vocab_size);
  const int64_t context = options_.max_length > 0
                              ? std::min(options_.max_length, config.max_position_embeddings)
                              : config.max_position_embeddings;
  int64_t longest_prompt = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto& prompt = prompts[p];
    if (prompt.empty()) throw_usage_error("prompt " + std::to_string(p) + " is empty");
    if (static_cast<int64_t>(prompt.size()) >= context) {
      throw_usage_error("prompt " + std::to_string(p) + " has " + std::to_string(prompt.size()) +
                        " tokens; the context holds " + std::to_string(context) +
                        " (prompt plus at least one generated token)");
    }
    for (int64_t id : prompt) {
      if (id < 0 || id >= config.vocab_size) {
        throw_usage_error("prompt " + std::to_string(p) + " has token id " + std::to_string(id) +
                          " outside the vocabulary [0, " + std::to_string(config.vocab_size) + ")");
      }
    }
    longest_prompt = std::max<int64_t>(longest_prompt, prompt.size());
  }

  std::vector<int64_t> stop_ids = params.stop_token_ids;
  if (params.stop_at_eos) {
    for (int64_t id : end_of_sequence_ids(config, tokenizer_)) stop_ids.push_back(id);
  }
  if (!params.stop_strings.empty() && !tokenizer_) {
    throw_usage_error("stop_strings need a tokenizer to decode text");
  }
  if (params.mask_padded_vocab && !tokenizer_) {
    throw_usage_error("mask_padded_vocab needs a tokenizer to know its vocabulary size");
  }
  // Padding rows of the model's vocabulary are never sampled.
  const Sampler sampler(
      tokenizer_ ? masked_padded_vocab(params, config.vocab_size, tokenizer_->vocab_size())
                 : params);
  size_t longest_stop = 0;
  for (const auto& stop : params.stop_strings) longest_stop = std::max(longest_stop, stop.size());

  const int64_t total_sequences = static_cast<int64_t>(prompts.size()) * params.n;
  const int64_t rows = std::max<int64_t>(
      params.n, std::min(options_.max_batch_size, std::max<int64_t>(total_sequences, 1)));
  const int64_t row_length = std::min(context, longest_prompt + params.max_new_tokens);
  const at::TensorOptions cache_options =
      model->model->embed_tokens->weight.options().dtype(compute_dtype_);
  if (!cache_ || cache_->rows() != rows || cache_->max_length() < row_length ||
      cache_->keys(0).device() != cache_options.device() ||
      cache_->keys(0).dtype() != cache_options.dtype()) {
    cache_ = std::make_unique<KvCache>(config, rows, row_length, cache_options);
  }
  KvCache& cache = *cache_;
  cache.reset();

  c10::InferenceMode inference_guard;
  const ThreadLimit thread_limit(cache_options.device().is_cpu() ? options_.num_threads : 0);
  const std::shared_ptr<const DecodePlan> plan = weights_->decode_plan(compute_dtype_);
  stats_ = Stats{};
  const int64_t version = weights_->version.load();
  std::vector<Completion> results(total_sequences);
  std::vector<std::optional<LiveSequence>> live(rows);  // by cache row
  std::vector<int64_t> free_rows;
  for (int64_t row = rows - 1; row >= 0; --row) free_rows.push_back(row);
  std::deque<int64_t> waiting;
  for (size_t p = 0; p < prompts.size(); ++p) waiting.push_back(static_cast<int64_t>(p));
  const at::Device device = cache_options.device();

  // Appends a sampled token to the sequence in `row`; returns true when it ends.
  auto accept_token = [&](int64_t row, int64_t token, float logprob) {
    LiveSequence& sequence = *live[row];
    Completion& completion = sequence.completion;
    // A sampled token's logprob is finite whenever its row of logits is: a
    // non-finite one means NaN or infinite logits, which would sample token 0.
    if (!std::isfinite(logprob)) {
      throw Error(
          "generate: the model's logits are not finite (log-prob " + std::to_string(logprob) +
              " for completion token " + std::to_string(completion.token_ids.size()) +
              " of prompt " + std::to_string(completion.prompt_index) + " at weights version " +
              std::to_string(version) + "): the weights or activations hold NaN or infinite values",
          ErrorKind::kRuntime);
    }
    completion.token_ids.push_back(token);
    completion.logprobs.push_back(logprob);
    bool stop = std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end();
    // A stop token ends the ids but is not part of the text (as vLLM and TRL decode).
    if (sequence.decoder && !stop) {
      std::string piece = sequence.decoder->push(token);
      size_t search_from =
          completion.text.size() > longest_stop ? completion.text.size() - longest_stop + 1 : 0;
      completion.text += piece;
      size_t ready = completion.text.size();
      if (!params.stop_strings.empty()) {
        size_t cut = std::string::npos;
        for (const auto& stop_string : params.stop_strings) {
          size_t found = completion.text.find(stop_string, search_from);
          if (found != std::string::npos) cut = std::min(cut, found);
        }
        if (cut != std::string::npos) {
          completion.text.resize(cut);
          ready = cut;
          stop = true;
        } else {
          ready -= pending_stop_prefix(completion.text, params.stop_strings);
        }
      }
      if (on_text && ready > sequence.streamed) {
        on_text(completion.prompt_index, completion.sample_index,
                completion.text.substr(sequence.streamed, ready - sequence.streamed));
        sequence.streamed = ready;
      }
    }
    if (stop) {
      completion.finish_reason = FinishReason::kStop;
      return true;
    }
    int64_t generated = static_cast<int64_t>(completion.token_ids.size());
    if (generated >= params.max_new_tokens || sequence.prompt_length + generated >= row_length) {
      completion.finish_reason = FinishReason::kLength;
      return true;
    }
    return false;
  };

  auto retire = [&](int64_t row) {
    LiveSequence& sequence = *live[row];
    if (sequence.decoder) {
      Completion& completion = sequence.completion;
      if (completion.finish_reason == FinishReason::kLength)
        completion.text += sequence.decoder->finish();
      if (on_text && completion.text.size() > sequence.streamed) {
        on_text(completion.prompt_index, completion.sample_index,
                completion.text.substr(sequence.streamed));
      }
    }
    int64_t slot = (sequence.completion.prompt_index - first_prompt_index) * params.n +
                   sequence.completion.sample_index;
    results[slot] = std::move(sequence.completion);
    live[row].reset();
    cache.reset_row(row);
    free_rows.push_back(row);
  };

  // The token history of the sequences in `batch_rows`, as views for the
  // logits processors.
  auto logits_context = [&](const std::vector<int64_t>& batch_rows) {
    LogitsContext context;
    context.tokenizer_vocab_size = tokenizer_ ? tokenizer_->vocab_size() : 0;
    context.prompt_ids.reserve(batch_rows.size());
    context.generated_ids.reserve(batch_rows.size());
    for (int64_t row : batch_rows) {
      const Completion& completion = live[row]->completion;
      context.prompt_ids.emplace_back(prompts[completion.prompt_index - first_prompt_index]);
      context.generated_ids.emplace_back(completion.token_ids);
    }
    return context;
  };

  auto draw_uniforms = [&](const std::vector<int64_t>& batch_rows) {
    at::Tensor uniforms = at::empty({static_cast<int64_t>(batch_rows.size())}, at::kDouble);
    double* data = uniforms.data_ptr<double>();
    for (size_t i = 0; i < batch_rows.size(); ++i) data[i] = next_uniform(live[batch_rows[i]]->rng);
    return uniforms;
  };

  while (!waiting.empty() || static_cast<int64_t>(free_rows.size()) < rows) {
    // Admit waiting prompts while a whole group fits: one prefill row each.
    std::vector<int64_t> admitted_prompts;
    std::vector<std::vector<int64_t>> admitted_rows;
    while (!waiting.empty() && static_cast<int64_t>(free_rows.size()) >= params.n) {
      int64_t p = waiting.front();
      waiting.pop_front();
      std::vector<int64_t> group;
      for (int64_t s = 0; s < params.n; ++s) {
        int64_t row = free_rows.back();
        free_rows.pop_back();
        group.push_back(row);
        LiveSequence sequence;
        sequence.completion.prompt_index = first_prompt_index + p;
        sequence.completion.sample_index = s;
        sequence.completion.weights_version = version;
        sequence.rng = sequence_rng(params.seed, first_prompt_index + p, s);
        sequence.prompt_length = static_cast<int64_t>(prompts[p].size());
        if (tokenizer_) sequence.decoder.emplace(*tokenizer_);
        live[row].emplace(std::move(sequence));
      }
      admitted_prompts.push_back(p);
      admitted_rows.push_back(std::move(group));
    }
    if (!admitted_prompts.empty()) {
      auto start = Clock::now();
      const int64_t count = static_cast<int64_t>(admitted_prompts.size());
      int64_t width = 0;
      for (int64_t p : admitted_prompts) width = std::max<int64_t>(width, prompts[p].size());
      at::Tensor tokens = at::zeros({count, width}, at::kLong);
      std::vector<int64_t> lengths(count), prefill_rows(count);
      for (int64_t i = 0; i < count; ++i) {
        const auto& prompt = prompts[admitted_prompts[i]];
        std::copy(prompt.begin(), prompt.end(), tokens.data_ptr<int64_t>() + i * width);
        lengths[i] = static_cast<int64_t>(prompt.size());
        prefill_rows[i] = admitted_rows[i][0];
        stats_.prefill_tokens += static_cast<int64_t>(prompt.size());
      }
      at::Tensor logits =
          plan->forward(tokens.to(device), cache, prefill_rows, lengths);  // (count, V)
      // Fan the prefill out to every sample of the group, then draw each
      // sample's first token from the shared last-position logits.
      std::vector<int64_t> sample_rows;
      std::vector<int64_t> logit_index;
      for (int64_t i = 0; i < count; ++i) {
        const auto& group = admitted_rows[i];
        if (group.size() > 1)
          cache.copy_row(group[0], std::vector<int64_t>(group.begin() + 1, group.end()));
        for (int64_t row : group) {
          sample_rows.push_back(row);
          logit_index.push_back(i);
        }
      }
      at::Tensor expanded =
          logits.index_select(0, at::tensor(logit_index, at::kLong).to(logits.device()));
      SampledTokens sampled =
          sampler.sample(expanded, draw_uniforms(sample_rows), logits_context(sample_rows));
      at::Tensor chosen = sampled.tokens.cpu();
      at::Tensor chosen_logprobs = sampled.logprobs.cpu().to(at::kFloat);
      stats_.prefill_seconds += seconds_since(start);
      for (size_t i = 0; i < sample_rows.size(); ++i) {
        if (accept_token(sample_rows[i], chosen[i].item<int64_t>(),
                         chosen_logprobs[i].item<float>())) {
          retire(sample_rows[i]);
        }
      }
      continue;  // admit more before decoding when rows were freed
    }

    // One decode step over every live row.
    std::vector<int64_t> batch_rows;
    for (int64_t row = 0; row < rows; ++row) {
      if (live[row]) batch_rows.push_back(row);
    }
    if (batch_rows.empty()) break;
    auto start = Clock::now();
    const int64_t batch = static_cast<int64_t>(batch_rows.size());
    at::Tensor tokens = at::empty({batch, 1}, at::kLong);
    int64_t* token_data = tokens.data_ptr<int64_t>();
    for (int64_t i = 0; i < batch; ++i)
      token_data[i] = live[batch_rows[i]]->completion.token_ids.back();
    at::Tensor logits = plan->forward(tokens.to(device), cache, batch_rows,
                                      std::vector<int64_t>(batch, 1));  // (B, V)
    SampledTokens sampled =
        sampler.sample(logits, draw_uniforms(batch_rows), logits_context(batch_rows));
    at::Tensor chosen = sampled.tokens.cpu();
    at::Tensor chosen_logprobs = sampled.logprobs.cpu().to(at::kFloat);
    const int64_t* chosen_data = chosen.data_ptr<int64_t>();
    const float* logprob_data = chosen_logprobs.data_ptr<float>();
    stats_.decode_tokens += batch;
    stats_.decode_steps += 1;
    stats_.decode_seconds += seconds_since(start);
    for (int64_t i = 0; i < batch; ++i) {
      if (accept_token(batch_rows[i], chosen_data[i], logprob_data[i])) retire(batch_rows[i]);
    }
  }
  return results;
}

}  // namespace r1kit
