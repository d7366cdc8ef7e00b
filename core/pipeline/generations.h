// Side-by-side generations: the same prompts continued by the original model and its quantized
// versions, greedily and with seeded sampling (the same draws for every model), each
// continuation marked where it first leaves the original's. Damage that perplexity averages
// away (a loop, a wrong name, broken formatting) shows here in the text itself.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/progress.h"
#include "model/generate.h"
#include "model/model.h"

namespace gptqw {

struct Continuation {
  std::string model;            // "original", "rtn", "gptq" (as given)
  std::vector<int32_t> tokens;  // the new tokens
  std::string text;             // their text
  // The first new token that differs from the first model's continuation (the reference), and
  // the byte in `text` where the text first differs; -1 when the continuation is the
  // reference's (or a prefix of it that stopped early at the same point).
  int diverges_at_token = -1;
  int64_t diverges_at_byte = -1;
};

struct PromptGenerations {
  std::string prompt;
  SamplingOptions sampling;
  std::vector<Continuation> continuations;  // one per model, the reference first
};

struct GenerationSpec {
  std::vector<std::string> prompts;
  int new_tokens = 48;
  // Each prompt is continued once per entry: by default greedily, then sampled at temperature
  // 0.8, top-p 0.95, seed 1.
  std::vector<SamplingOptions> samplings = {SamplingOptions{}, SamplingOptions{0.8, 0, 0.95, 1}};
};

struct NamedWeights {
  std::string name;
  const WeightSource* weights;
};

// The stop tokens of a model: its tokenizer's EOS and BOS (llama2.c's models separate stories
// with BOS) and the config's eos_token_id.
std::vector<int32_t> stop_tokens(const Tokenizer& tokenizer, const ModelConfig& config);

// Continues every prompt with every model (models[0] is the reference the others are
// compared with). An empty prompt starts from BOS alone.
std::vector<PromptGenerations> generate_side_by_side(const std::vector<NamedWeights>& models,
                                                     const Tokenizer& tokenizer,
                                                     const GenerationSpec& spec,
                                                     const ProgressFn& progress = {});

// The continuation's text with `mark` inserted where it leaves the reference's.
std::string marked_text(const Continuation& c, std::string_view mark = "|>");

// The report's "generations": per prompt and sampling, each model's continuation.
nlohmann::json to_json(const std::vector<PromptGenerations>& generations);
class JsonFields;
PromptGenerations prompt_generations_from_json(const JsonFields& f);

// Prompts one per non-empty line ("\n" written as \n in a line is a newline; CRLF lines and
// lines of blanks allowed), as typed in the window or read from a file.
std::vector<std::string> parse_prompts(std::string_view text);
// The prompts of a file; ConfigError naming it when it holds none.
std::vector<std::string> read_prompts(const std::filesystem::path& file);

}  // namespace gptqw
