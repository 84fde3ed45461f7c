// Prompt templates: turn a Task into the text the tokenizer encodes. A registry
// of small objects (r1_zero, chatml, plain, and any a plugin adds), one file and
// one REGISTER_PROMPT_TEMPLATE line each, chosen by the recipe's
// environment.prompt_template. Text in, text out; const and thread-safe.
//
//   class ShoutTemplate : public r1kit::PromptTemplate {
//    public:
//     std::string render(const r1kit::Task& task) const override { return task.prompt + "!"; }
//   };
//   REGISTER_PROMPT_TEMPLATE("shout", ShoutTemplate);
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "common/registry.h"
#include "environments/environment.h"

namespace r1kit {

class PromptTemplate {
 public:
  virtual ~PromptTemplate() = default;
  // The full prompt, ending where the model's completion starts.
  virtual std::string render(const Task& task) const = 0;
};

// Builds a template; `system_prompt` is the recipe's environment.system_prompt
// ("" = none), used by templates that have a system turn.
using PromptTemplateFactory =
    std::function<std::unique_ptr<PromptTemplate>(const std::string& system_prompt)>;

// The template registry: REGISTER_PROMPT_TEMPLATE lines add to it.
Registry<PromptTemplateFactory>& prompt_template_registry();

// Builds the template registered as `name`; an unknown name throws the
// registry's config error with `source` in front.
std::unique_ptr<PromptTemplate> make_prompt_template(const std::string& name,
                                                     const std::string& system_prompt,
                                                     const std::string& source);
// prompt_template_registry().names(): sorted.
std::vector<std::string> registered_prompt_templates();

// The DeepSeek-R1-Zero template (DeepSeek-AI 2025, table 1).
extern const char* const kR1ZeroTemplate;

namespace detail {
template <class Template>
std::unique_ptr<PromptTemplate> construct_prompt_template(const std::string& system_prompt) {
  if constexpr (std::is_constructible_v<Template, const std::string&>) {
    return std::make_unique<Template>(system_prompt);
  } else {
    return std::make_unique<Template>();
  }
}
}  // namespace detail

}  // namespace r1kit

// Registers `Class` under `name` at load time. `Class` has a constructor taking
// the system prompt (`const std::string&`), or a default constructor when it
// has no system turn.
#define REGISTER_PROMPT_TEMPLATE(name, Class)                                                      \
  R1KIT_REGISTER(::r1kit::prompt_template_registry(), name, [](const std::string& system_prompt) { \
    return ::r1kit::detail::construct_prompt_template<Class>(system_prompt);                       \
  })
