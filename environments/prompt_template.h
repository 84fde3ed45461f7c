// Prompt templates: turn a Task into the text the tokenizer encodes. A registry
// of small objects (r1_zero, chatml, plain) chosen by the recipe's
// environment.prompt_template. Text in, text out; const and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "environments/environment.h"

namespace r1kit {

class PromptTemplate {
 public:
  virtual ~PromptTemplate() = default;
  // The full prompt, ending where the model's completion starts.
  virtual std::string render(const Task& task) const = 0;
};

// `system_prompt` is used by templates that have a system turn (chatml).
std::unique_ptr<PromptTemplate> make_prompt_template(const std::string& name,
                                                     const std::string& system_prompt,
                                                     const std::string& source);
std::vector<std::string> registered_prompt_templates();

// The DeepSeek-R1-Zero template (DeepSeek-AI 2025, table 1).
extern const char* const kR1ZeroTemplate;

}  // namespace r1kit
