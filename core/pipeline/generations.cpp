#include "pipeline/generations.h"

#include <algorithm>

#include "common/error.h"
#include "common/json_fields.h"
#include "common/text_file.h"

#include <nlohmann/json.hpp>

namespace gptqw {

std::vector<int32_t> stop_tokens(const Tokenizer& tokenizer, const ModelConfig& config) {
  std::vector<int32_t> stop;
  for (int32_t id : {tokenizer.eos_id(), tokenizer.bos_id(), config.eos_token_id})
    if (id >= 0 && std::find(stop.begin(), stop.end(), id) == stop.end()) stop.push_back(id);
  return stop;
}

namespace {

// Where `c` first leaves the reference: by token, and by byte of the decoded text (a token's
// text may differ from the reference's in its last bytes only, or tokens may differ while the
// text does not, as with two spellings of the same word in pieces).
void mark_divergence(Continuation& c, const Continuation& ref) {
  const size_t n = std::min(c.tokens.size(), ref.tokens.size());
  size_t t = 0;
  while (t < n && c.tokens[t] == ref.tokens[t]) ++t;
  if (t == c.tokens.size() && t == ref.tokens.size()) return;
  c.diverges_at_token = static_cast<int>(t);
  const size_t m = std::min(c.text.size(), ref.text.size());
  size_t b = 0;
  while (b < m && c.text[b] == ref.text[b]) ++b;
  c.diverges_at_byte = static_cast<int64_t>(b);
}

}  // namespace

std::vector<PromptGenerations> generate_side_by_side(const std::vector<NamedWeights>& models,
                                                     const Tokenizer& tokenizer,
                                                     const GenerationSpec& spec,
                                                     const ProgressFn& progress) {
  if (models.empty()) throw ConfigError("side-by-side generation needs at least one model");
  if (spec.new_tokens < 1) throw ConfigError("new_tokens must be at least 1");
  const std::vector<int32_t> stop = stop_tokens(tokenizer, models[0].weights->config());
  std::vector<PromptGenerations> out;
  const double total = double(spec.prompts.size() * spec.samplings.size() * models.size());
  double done = 0;
  for (const std::string& prompt : spec.prompts) {
    std::vector<int32_t> ids = tokenizer.encode(prompt, true);
    if (ids.empty()) {
      if (tokenizer.bos_id() < 0)
        throw ConfigError("the tokenizer has no BOS token to start an empty prompt from");
      ids.push_back(tokenizer.bos_id());
    }
    for (const SamplingOptions& sampling : spec.samplings) {
      PromptGenerations g{prompt, sampling, {}};
      for (const NamedWeights& m : models) {
        report_progress(progress, {"generate " + m.name, -1, 0, "", done / total});
        std::vector<int32_t> all = generate(*m.weights, ids, spec.new_tokens, stop, sampling);
        Continuation c;
        c.model = m.name;
        c.tokens.assign(all.begin() + static_cast<std::ptrdiff_t>(ids.size()), all.end());
        c.text = tokenizer.decode(c.tokens, true);
        if (!g.continuations.empty()) mark_divergence(c, g.continuations.front());
        g.continuations.push_back(std::move(c));
        ++done;
      }
      out.push_back(std::move(g));
    }
  }
  report_progress(progress, {"generate", -1, 0, "", 1.0});
  return out;
}

std::string marked_text(const Continuation& c, std::string_view mark) {
  std::string text = c.text;
  if (c.diverges_at_byte >= 0 && size_t(c.diverges_at_byte) <= text.size())
    text.insert(size_t(c.diverges_at_byte), mark);
  return text;
}

nlohmann::json to_json(const std::vector<PromptGenerations>& generations) {
  nlohmann::json out = nlohmann::json::array();
  for (const PromptGenerations& g : generations) {
    nlohmann::json models = nlohmann::json::array();
    for (const Continuation& c : g.continuations)
      models.push_back({{"model", c.model},
                        {"tokens", c.tokens},
                        {"text", c.text},
                        {"diverges_at_token", c.diverges_at_token},
                        {"diverges_at_byte", c.diverges_at_byte}});
    const SamplingOptions& s = g.sampling;
    out.push_back({{"prompt", g.prompt},
                   {"sampling", {{"temperature", s.temperature}, {"top_k", s.top_k}, {"top_p", s.top_p}, {"seed", s.seed}}},
                   {"continuations", std::move(models)}});
  }
  return out;
}

PromptGenerations prompt_generations_from_json(const JsonFields& f) {
  PromptGenerations g;
  g.prompt = f.string("prompt");
  const JsonFields s = f.object("sampling");
  g.sampling = {s.real("temperature"), s.integer<int>("top_k", 0), s.real("top_p"), s.integer<uint64_t>("seed")};
  for (const JsonFields& c : f.objects("continuations")) {
    Continuation k;
    k.model = c.string("model");
    k.tokens = c.integers<int32_t>("tokens");
    k.text = c.string("text");
    k.diverges_at_token = c.integer<int>("diverges_at_token", -1);
    k.diverges_at_byte = c.integer<int64_t>("diverges_at_byte", -1, int64_t(k.text.size()));
    g.continuations.push_back(std::move(k));
  }
  return g;
}

std::vector<std::string> parse_prompts(std::string_view text) {
  std::vector<std::string> prompts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string prompt;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == 'n') {
        prompt += '\n';
        ++i;
      } else {
        prompt += line[i];
      }
    }
    if (prompt.find_first_not_of(" \t") != std::string::npos) prompts.push_back(std::move(prompt));
    start = end + 1;
  }
  return prompts;
}

std::vector<std::string> read_prompts(const std::filesystem::path& file) {
  std::vector<std::string> prompts = parse_prompts(read_text_file(file));
  if (prompts.empty()) throw ConfigError(file_msg(file, "holds no prompt (one per line)"));
  return prompts;
}

}  // namespace gptqw
