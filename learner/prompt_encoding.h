// Turns tasks into prompt token ids: the prompt template renders each task and
// the tokenizer encodes it. Shared by the RL trainer, evaluation and rejection
// sampling so that all of them see the same prompts. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "environments/environment.h"
#include "environments/prompt_template.h"
#include "policy/tokenizer.h"

namespace r1kit {

// Renders and tokenizes tasks; prompts longer than `max_prompt_length` keep their end.
// With `rendered`, the rendered texts are appended to it, one per task.
// `add_special_tokens` puts the tokenizer's post-processor tokens around each
// prompt (Llama-3's <|begin_of_text|> in front), as transformers' tokenizer(text)
// and TRL's GRPOTrainer do for text prompts (environment.add_special_tokens).
std::vector<std::vector<int64_t>> encode_prompts(const std::vector<Task>& tasks,
                                                 const PromptTemplate& prompt_template,
                                                 const Tokenizer& tokenizer,
                                                 int64_t max_prompt_length,
                                                 std::vector<std::string>* rendered = nullptr,
                                                 bool add_special_tokens = true);

}  // namespace r1kit
