// The multi-turn rollout of the RL step (docs/architecture.md, line 4): the engine samples
// a model turn (ending at a stop string such as "</tool>"), the environment
// answers it through Environment::step(), the observation's tokens are
// appended and generation resumes, until the environment says done or the
// completion budget is spent. Sampled ids are kept exactly as sampled; only
// observations are tokenized. Functions only; one caller per RolloutWorkers.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "environments/environment.h"
#include "policy/tokenizer.h"
#include "rollout/workers.h"

namespace r1kit {

// One trajectory after the prompt: model turns and observations in order.
struct MultiTurnTrajectory {
  int64_t prompt_index = 0;        // as Completion::prompt_index
  int64_t sample_index = 0;        // 0..n-1 within its prompt
  std::vector<int64_t> token_ids;  // (T) model and observation tokens after the prompt
  std::vector<float> logprobs;     // (T) sampled log-probs; 0 at observation tokens
  std::vector<uint8_t>
      observation_mask;     // (T) 1 where the environment wrote the token (out of the loss)
  std::vector<Turn> turns;  // the text of each segment, for step() and render_turns()
  std::string text;         // render_turns(turns).text: what rewards score
  FinishReason finish_reason = FinishReason::kStop;  // kLength: the budget or context ran out
  std::optional<double> environment_reward;          // the last StepResult::reward, if any
  int64_t model_turns = 0;
  int64_t model_tokens = 0;  // sampled tokens (T minus observation tokens)
};

// A single-turn completion in the same shape (one model turn, no
// observations). With `stop_strings` the text is its ids decoded, so rewards
// see the stop string the learner trains on (the engine cuts it from the text).
MultiTurnTrajectory single_turn_trajectory(Completion completion, const Tokenizer& tokenizer,
                                           bool stop_strings);

struct MultiTurnOptions {
  int64_t max_completion_tokens = 256;  // model plus observation tokens after the prompt
  int64_t max_turns = 0;       // model turns per trajectory; 0 = until done or out of budget
  int64_t context_length = 0;  // prompt + trajectory tokens the engine holds; 0 = no limit
};

// Samples params.n trajectories per prompt of `tasks` (`prompts` are their
// encodings), returned in (prompt, sample) order. The first turn draws with
// params.seed like a single-turn rollout; turn k > 0 continues every live
// trajectory with n = 1 and a seed derived from params.seed and k. Prompt
// indices start at `first_prompt_index` (see RolloutEngine::generate). Later
// turns number the live trajectories of this call in order, so a batch split
// over ranks draws them differently from one rank (the first turn draws the
// same). The environment's step() runs on the calling thread.
std::vector<MultiTurnTrajectory> generate_multi_turn(
    RolloutWorkers& rollout, const Environment& environment, const std::vector<Task>& tasks,
    const std::vector<std::vector<int64_t>>& prompts, const Tokenizer& tokenizer,
    const SamplingParams& params, const MultiTurnOptions& options, int64_t first_prompt_index = 0);

}  // namespace r1kit
