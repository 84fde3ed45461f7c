#include "learner/prompt_encoding.h"

#include <utility>

namespace r1kit {

std::vector<std::vector<int64_t>> encode_prompts(const std::vector<Task>& tasks,
                                                 const PromptTemplate& prompt_template,
                                                 const Tokenizer& tokenizer,
                                                 int64_t max_prompt_length,
                                                 std::vector<std::string>* rendered,
                                                 bool add_special_tokens) {
  std::vector<std::vector<int64_t>> prompts;
  prompts.reserve(tasks.size());
  for (const auto& task : tasks) {
    std::string text = prompt_template.render(task);
    std::vector<int64_t> ids = tokenizer.encode(text, add_special_tokens);
    if (static_cast<int64_t>(ids.size()) > max_prompt_length) {
      ids.erase(ids.begin(), ids.end() - max_prompt_length);
    }
    prompts.push_back(std::move(ids));
    if (rendered) rendered->push_back(std::move(text));
  }
  return prompts;
}

}  // namespace r1kit
