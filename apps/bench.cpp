// `r1kit bench rollout|learner`: prefill and decode throughput of the rollout engine
// on random models of ~20M and ~100M parameters at batch 1, 8 and 64, in each
// rollout compute dtype (float32, bfloat16), and the
// achieved FLOP/s against this machine's measured matmul peak in that dtype. `--export`
// writes the model as a Hugging Face folder so bench/rollout.sh can run
// transformers' generate on the same weights; `learner` times forward, backward
// and an AdamW step over padded batches. Numbers, never a pass/fail.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <random>

#include "apps/subcommand.h"
#include "common/error.h"
#include "policy/checkpoint.h"
#include "rollout/engine.h"
#include "rollout/workers.h"

namespace r1kit::apps {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArguments {
  std::string what;
  std::vector<std::string> sizes = {"20m", "100m"};
  std::vector<int64_t> batches = {1, 8, 64};
  std::vector<std::string> dtypes = {
      "float32", "bfloat16"};  // rollout compute dtypes (EngineOptions::compute_dtype)
  int64_t prompt_length = 64;
  int64_t new_tokens = 64;
  // Timed runs per measurement (rollout: pairs of runs); the median counts
  // (this machine's timings are noisy) and the rollout bench also prints the best.
  int64_t repeats = 3;
  int64_t workers = 0;  // rollout engines sharing the cores; 0 = RolloutWorkers' automatic count
  std::string export_dir;
  std::string json_output;
};

ModelConfig bench_config(const std::string& size) {
  ModelConfig config;
  config.model_type = "llama";
  config.max_position_embeddings = 2048;
  config.rope_theta = 10000.0;
  config.tie_word_embeddings = false;
  if (size == "20m") {
    config.vocab_size = 8192;
    config.hidden_size = 384;
    config.intermediate_size = 1024;
    config.num_hidden_layers = 8;
    config.num_attention_heads = 6;
    config.num_key_value_heads = 2;
  } else if (size == "100m") {
    config.vocab_size = 16384;
    config.hidden_size = 768;
    config.intermediate_size = 2048;
    config.num_hidden_layers = 12;
    config.num_attention_heads = 12;
    config.num_key_value_heads = 4;
  } else {
    throw_usage_error("unknown model size \"" + size + "\"; expected 20m or 100m");
  }
  return config;
}

int64_t parameter_count(Transformer& model) {
  int64_t total = 0;
  for (const auto& parameter : model->parameters()) total += parameter.numel();
  return total;
}

// The best rate of at::mm on large squares (the blocking at its best) in
// `dtype` on the calling thread's ATen threads, the best of several runs.
double best_matmul_rate(at::ScalarType dtype) {
  c10::InferenceMode guard;
  double best = 0;
  for (int64_t n : {1024, 2048}) {
    const at::Tensor a = at::randn({n, n}).to(dtype);
    const at::Tensor b = at::randn({n, n}).to(dtype);
    at::mm(a, b);  // warm-up: oneDNN builds its kernels on the first call
    for (int run = 0; run < 5; ++run) {
      const int repeats = n == 1024 ? 4 : 1;
      const auto start = Clock::now();
      for (int i = 0; i < repeats; ++i) at::mm(a, b);
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      best = std::max(best, 2.0 * n * n * n * repeats / seconds);
    }
  }
  return best;
}

// This machine's matmul peak in `dtype`, the roofline the FLOP/s numbers are
// compared with: the larger of at::mm on all threads and the threads times
// at::mm on one (on a shared machine the threads of one matmul wait for each
// other at every barrier; single-threaded engines, one per core, do not).
double measure_matmul_peak(at::ScalarType dtype) {
  const int threads = at::get_num_threads();
  const double all_threads = best_matmul_rate(dtype);
  at::set_num_threads(1);
  const double one_thread = best_matmul_rate(dtype);
  at::set_num_threads(threads);
  return std::max(all_threads, threads * one_thread);
}

// Parameters the matmuls of one token read: all but the embedding table,
// which a token only looks up (it counts when the output projection reuses it).
int64_t matmul_parameter_count(Transformer& model, const ModelConfig& config) {
  int64_t total = parameter_count(model);
  if (!config.tie_word_embeddings) total -= model->model->embed_tokens->weight.numel();
  return total;
}

std::vector<std::vector<int64_t>> random_prompts(int64_t count, int64_t length, int64_t vocab,
                                                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> token(3, vocab - 1);
  std::vector<std::vector<int64_t>> prompts(count, std::vector<int64_t>(length));
  for (auto& prompt : prompts) {
    for (auto& id : prompt) id = token(rng);
  }
  return prompts;
}

double timed_generate(RolloutWorkers& engine, const std::vector<std::vector<int64_t>>& prompts,
                      const SamplingParams& params) {
  auto start = Clock::now();
  engine.generate(prompts, params);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

// Prefill and decode seconds of one batch: `repeats` alternating pairs of a
// one-token run (prefill and the first token) and a full run; a pair's decode
// time is the full run minus the one-token run. A pair whose full run is not
// longer (a busy moment of a shared machine) has no decode time, so it is
// dropped; with no pair left the decode figures are absent, never a rate over
// an empty interval.
struct BatchTimings {
  std::vector<double> prefill_seconds;
  std::vector<double> decode_seconds;  // pairs with a positive difference only
  int64_t dropped_pairs = 0;
};

BatchTimings time_batch(RolloutWorkers& engine, const std::vector<std::vector<int64_t>>& prompts,
                        SamplingParams params, int64_t new_tokens, int64_t repeats) {
  BatchTimings timings;
  for (int64_t r = 0; r < repeats; ++r) {
    params.max_new_tokens = 1;
    const double prefill = timed_generate(engine, prompts, params);
    params.max_new_tokens = new_tokens;
    const double total = timed_generate(engine, prompts, params);
    timings.prefill_seconds.push_back(prefill);
    if (total > prefill) {
      timings.decode_seconds.push_back(total - prefill);
    } else {
      ++timings.dropped_pairs;
    }
  }
  return timings;
}

int run_rollout_bench(const BenchArguments& args) {
  if (args.new_tokens < 2)
    throw_usage_error("--new-tokens must be at least 2 to time decode steps");
  const double peak_float32 = measure_matmul_peak(at::kFloat);
  const double peak_bfloat16 = measure_matmul_peak(at::kBFloat16);
  std::cout << "threads " << at::get_num_threads() << ", matmul peak (at::mm on large squares) "
            << peak_float32 / 1e9 << " GFLOP/s float32, " << peak_bfloat16 / 1e9
            << " GFLOP/s bfloat16\n";
  std::cout << "decode rates: median (min) over " << args.repeats
            << " alternating pairs of runs; FLOP/s count 2 per matmul parameter per token\n";
  std::cout << "size  params  dtype     batch  prefill_tok/s  decode_tok/s (best)  ms/decode_step  "
               "decode_GFLOP/s  %dtype_peak\n";
  nlohmann::json report = {{"matmul_peak_flops", peak_float32},
                           {"matmul_peak_flops_bfloat16", peak_bfloat16},
                           {"threads", at::get_num_threads()},
                           {"results", nlohmann::json::array()}};
  for (const auto& size : args.sizes) {
    ModelConfig config = bench_config(size);
    auto weights = std::make_shared<PolicyWeights>(make_random_transformer(config, 1234));
    const int64_t params_count = parameter_count(weights->model);
    const int64_t matmul_params = matmul_parameter_count(weights->model, config);
    const int64_t most = *std::max_element(args.batches.begin(), args.batches.end());
    const auto all_prompts = random_prompts(most, args.prompt_length, config.vocab_size, 7);
    if (!args.export_dir.empty() && size == args.sizes.front()) {
      save_pretrained(weights->model, args.export_dir);
      std::ofstream(std::filesystem::path(args.export_dir) / "bench_prompts.json")
          << nlohmann::json(all_prompts).dump();
    }
    for (const auto& dtype : args.dtypes) {
      const double peak = dtype == "bfloat16" ? peak_bfloat16 : peak_float32;
      RolloutWorkers engine(weights, nullptr, static_cast<size_t>(args.workers),
                            {.max_batch_size = 64, .compute_dtype = dtype});
      SamplingParams params;
      params.temperature = 0;
      params.stop_at_eos = false;
      for (int64_t batch : args.batches) {
        std::vector<std::vector<int64_t>> prompts(all_prompts.begin(), all_prompts.begin() + batch);
        params.max_new_tokens = 2;
        timed_generate(engine, prompts, params);  // warm-up
        const BatchTimings timings =
            time_batch(engine, prompts, params, args.new_tokens, args.repeats);
        const double prefill_seconds = median(timings.prefill_seconds);
        const double prefill_rate = batch * args.prompt_length / prefill_seconds;
        // Every row runs to new_tokens (no stop token): new_tokens - 1 decode
        // steps after the prefill's first token.
        const int64_t decode_steps = args.new_tokens - 1;
        const double decode_tokens = static_cast<double>(batch * decode_steps);
        nlohmann::json result = {
            {"size", size},
            {"parameters", params_count},
            {"matmul_parameters", matmul_params},
            {"dtype", dtype},
            {"batch", batch},
            {"prompt_length", args.prompt_length},
            {"new_tokens", args.new_tokens},
            {"prefill_tokens_per_second", prefill_rate},
            {"prefill_tokens_per_second_best",
             batch * args.prompt_length /
                 *std::min_element(timings.prefill_seconds.begin(), timings.prefill_seconds.end())},
            {"dropped_pairs", timings.dropped_pairs}};
        if (timings.decode_seconds.empty()) {
          std::printf(
              "%-5s %5.1fM  %-8s %6lld %14.0f  n/a: no run was longer than its one-token "
              "run (machine busy?)\n",
              size.c_str(), params_count / 1e6, dtype.c_str(), static_cast<long long>(batch),
              prefill_rate);
          result["decode_tokens_per_second"] = nullptr;
        } else {
          const double decode_seconds = median(timings.decode_seconds);
          const double fastest =
              *std::min_element(timings.decode_seconds.begin(), timings.decode_seconds.end());
          const double decode_rate = decode_tokens / decode_seconds;
          // Decode FLOPs: 2 per matmul parameter per token, attention ignored.
          const double decode_flops = 2.0 * matmul_params * decode_rate;
          std::printf("%-5s %5.1fM  %-8s %6lld %14.0f %12.0f (%6.0f) %15.2f %15.1f %12.1f%s\n",
                      size.c_str(), params_count / 1e6, dtype.c_str(),
                      static_cast<long long>(batch), prefill_rate, decode_rate,
                      decode_tokens / fastest, 1000.0 * decode_seconds / decode_steps,
                      decode_flops / 1e9, 100.0 * decode_flops / peak,
                      timings.dropped_pairs ? "  (pairs dropped: machine busy)" : "");
          result["decode_tokens_per_second"] = decode_rate;
          result["decode_tokens_per_second_best"] = decode_tokens / fastest;
          result["seconds_per_decode_step"] = decode_seconds / decode_steps;
          result["decode_flops"] = decode_flops;
        }
        report["results"].push_back(result);
        std::fflush(stdout);
      }
    }
  }
  if (!args.json_output.empty()) {
    std::ofstream(args.json_output) << report.dump(2) << "\n";
  }
  return 0;
}

// The learner's hot loop: forward and backward over a padded batch plus one
// AdamW step, on the same model sizes; FLOPs counted as 6 per parameter per
// token (forward 2, backward 4), attention ignored.
int run_learner_bench(const BenchArguments& args) {
  const double peak = measure_matmul_peak(at::kFloat);
  std::cout << "threads " << at::get_num_threads() << ", float32 matmul peak " << peak / 1e9
            << " GFLOP/s\n";
  std::cout << "size  params  batch x length  tokens/s  step_ms  GFLOP/s  %peak\n";
  nlohmann::json report = {{"matmul_peak_flops", peak}, {"results", nlohmann::json::array()}};
  for (const auto& size : args.sizes) {
    ModelConfig config = bench_config(size);
    Transformer model = make_random_transformer(config, 1234);
    const int64_t params_count = parameter_count(model);
    std::vector<at::Tensor> parameters = model->parameters();
    torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(1e-5));
    const int64_t length = args.prompt_length + args.new_tokens;
    for (int64_t batch : args.batches) {
      at::Tensor tokens = at::randint(3, config.vocab_size, {batch, length}, at::kLong);
      at::Tensor mask = at::ones_like(tokens);
      auto one_step = [&] {
        optimizer.zero_grad();
        at::Tensor logits = model->forward(tokens, mask);
        at::Tensor loss =
            at::cross_entropy_loss(logits.narrow(1, 0, length - 1).reshape({-1, config.vocab_size}),
                                   tokens.narrow(1, 1, length - 1).reshape({-1}));
        loss.backward();
        optimizer.step();
      };
      one_step();  // warm-up
      const int repeats = 3;
      auto start = Clock::now();
      for (int i = 0; i < repeats; ++i) one_step();
      double seconds = std::chrono::duration<double>(Clock::now() - start).count() / repeats;
      double rate = static_cast<double>(batch * length) / seconds;
      double flops = 6.0 * params_count * rate;
      std::printf("%-5s %5.1fM %6lld x %-6lld %9.0f %8.1f %8.1f %6.1f\n", size.c_str(),
                  params_count / 1e6, static_cast<long long>(batch), static_cast<long long>(length),
                  rate, 1000 * seconds, flops / 1e9, 100 * flops / peak);
      std::fflush(stdout);
      report["results"].push_back({{"size", size},
                                   {"parameters", params_count},
                                   {"batch", batch},
                                   {"length", length},
                                   {"tokens_per_second", rate},
                                   {"flops", flops}});
    }
  }
  if (!args.json_output.empty()) std::ofstream(args.json_output) << report.dump(2) << "\n";
  return 0;
}

int run_bench(const BenchArguments& args) {
  if (args.what == "rollout") return run_rollout_bench(args);
  if (args.what == "learner") return run_learner_bench(args);
  throw_usage_error("unknown benchmark \"" + args.what + "\"; expected: rollout, learner");
}

Action setup(CLI::App& app) {
  auto args = std::make_shared<BenchArguments>();
  app.add_option("what", args->what,
                 "which benchmark: rollout (generation) or learner (forward+backward+AdamW)")
      ->required();
  app.add_option("--sizes", args->sizes, "model sizes: 20m, 100m")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--batches", args->batches, "batch sizes")->delimiter(',')->capture_default_str();
  app.add_option("--prompt-length", args->prompt_length, "prompt tokens")->capture_default_str();
  app.add_option("--new-tokens", args->new_tokens, "generated tokens per sequence")
      ->capture_default_str();
  app.add_option("--repeats", args->repeats,
                 "timed runs per measurement (rollout: alternating pairs of a one-token and a full "
                 "run); the median counts")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--workers", args->workers,
                 "rollout engines sharing the cores, each on its share of the threads; 0 = one per "
                 "core (CPU)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--dtypes", args->dtypes, "rollout compute dtypes: float32, bfloat16")
      ->delimiter(',')
      ->check(CLI::IsMember({"float32", "bfloat16"}))
      ->capture_default_str();
  app.add_option("--export", args->export_dir,
                 "save the first model size as a Hugging Face folder here");
  app.add_option("--json", args->json_output, "also write the numbers as JSON here");
  return [args] { return run_bench(*args); };
}

}  // namespace

REGISTER_SUBCOMMAND("bench",
                    "throughput benchmarks (rollout, learner) with FLOP/s against the matmul peak",
                    setup);

}  // namespace r1kit::apps
