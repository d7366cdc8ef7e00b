// gptqw generate: continuations of prompts, greedy or seeded sampled. With --with, the same
// prompts continued by quantized checkpoints beside the model, each marked where it first
// leaves the model's own continuation.
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "common/error.h"
#include "commands.h"
#include "pipeline/generations.h"

namespace gptqw::cli {

int cmd_generate(const std::vector<std::string>& words) {
  Args args(words, {"--json", "--quiet"},
            {"--model", "--tokenizer", "--prompt", "--prompts", "--tokens", "--threads", "--with",
             "--temperature", "--top-k", "--top-p", "--seed"});
  const std::vector<std::string> with = args.get_all("--with");
  GenerationSpec spec;
  spec.new_tokens = static_cast<int>(args.get_int("--tokens", 64, 1, kMaxNewTokens));
  // Greedy always; a seeded sampled continuation too where asked, and by default when
  // comparing models (the same draws for each, so they differ only where the models do).
  SamplingOptions sampled;
  sampled.temperature = args.get_double("--temperature", with.empty() ? 0.0 : 0.8, 0.0, 100.0);
  sampled.top_k = static_cast<int>(args.get_int("--top-k", 0, 0, 1L << 30));
  sampled.top_p = args.get_double("--top-p", 0.95, 1e-6, 1.0);
  sampled.seed = static_cast<uint64_t>(args.get_int("--seed", 1, 0, std::numeric_limits<long>::max()));
  spec.samplings = {SamplingOptions{}};
  if (!sampled.greedy()) spec.samplings.push_back(sampled);
  spec.prompts = prompts_of(args);
  if (spec.prompts.empty()) spec.prompts.push_back("");  // from BOS
  apply_threads(args);
  const bool json = args.flag("--json");

  Model model = open_model(args);
  // The checkpoints compared are read with the model's tokenizer: their vocabularies must agree.
  std::vector<std::shared_ptr<const WeightSource>> others;
  std::vector<NamedWeights> models = {{"original", model.weights.get()}};
  for (const std::string& path : with) {
    const auto& w = others.emplace_back(open_weights(path));
    if (w->config().vocab_size != model.config().vocab_size)
      throw ConfigError(file_msg(path, "has a vocabulary of " + std::to_string(w->config().vocab_size) +
                                           " tokens, the model's has " +
                                           std::to_string(model.config().vocab_size)));
    models.push_back({std::filesystem::path(path).filename().string(), w.get()});
  }

  TerminalProgress bar(json || args.flag("--quiet") || models.size() == 1);
  const std::vector<PromptGenerations> out =
      generate_side_by_side(models, *model.tokenizer, spec, bar.callback());
  bar.finish();
  if (json) {
    std::printf("%s\n", to_json(out).dump(2).c_str());
    return 0;
  }
  if (models.size() == 1) {  // the plain continuation, prompt included
    for (const PromptGenerations& g : out) std::printf("%s%s\n", g.prompt.c_str(), g.continuations[0].text.c_str());
    return 0;
  }
  for (const PromptGenerations& g : out) print_generations(g);
  return 0;
}

}  // namespace gptqw::cli
