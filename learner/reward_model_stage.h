// The `reward_model` stage: trains a scalar reward head (and the backbone) on
// preference pairs {"prompt","chosen","rejected"} with the Bradley-Terry loss
// -log sigmoid(r(chosen) - r(rejected)) (Ouyang et al. 2022; TRL's
// RewardTrainer), reports pair accuracy on a held-out split, and writes a
// Hugging Face *ForSequenceClassification folder that `learned_rm` loads.
// One process; no --resume yet.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"

namespace r1kit {

struct RewardModelConfig {
  std::string train_file;      // JSONL of {"prompt","chosen","rejected"}; required
  std::string eval_file;       // held-out pairs; "" = hold out eval_fraction of train_file
  double eval_fraction = 0.1;  // share of train_file held out when eval_file is ""; 0 = no eval
  int64_t max_length = 512;    // tokens of prompt + answer (left-truncated) (TRL)
  int64_t per_device_train_batch_size = 8;  // pairs per optimizer step (HF)
  int64_t num_train_epochs = 1;             // passes over the training pairs (HF)
  int64_t eval_steps = 0;  // evaluate every this many steps; 0 = at the end only (HF)

  void visit(ConfigVisitor& v);
};

// One preference pair after tokenisation.
struct PreferencePair {
  std::vector<int64_t> chosen;    // prompt + chosen answer
  std::vector<int64_t> rejected;  // prompt + rejected answer
};

}  // namespace r1kit
