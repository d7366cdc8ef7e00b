// gptqw generate: greedy continuation of a prompt, a quick check that a model runs right.
#include <cstdio>

#include "cli_common.h"
#include "commands.h"
#include "model/generate.h"

namespace gptqw::cli {

int cmd_generate(const std::vector<std::string>& words) {
  Args args(words, {}, {"--model", "--tokenizer", "--prompt", "--tokens", "--threads"});
  long n = args.get_int("--tokens", 64, 1, kMaxNewTokens);
  apply_threads(args);
  Model model = open_model(args);
  std::string prompt = args.get_or("--prompt", "");
  std::vector<int32_t> ids = model.tokenizer->encode(prompt, true);
  if (ids.empty()) {
    if (model.tokenizer->bos_id() < 0)
      throw UsageError("the tokenizer has no BOS token: give a non-empty --prompt");
    ids.push_back(model.tokenizer->bos_id());
  }
  std::vector<int32_t> stop;
  for (int32_t id : {model.tokenizer->eos_id(), model.tokenizer->bos_id(), model.config().eos_token_id})
    if (id >= 0) stop.push_back(id);
  std::vector<int32_t> out = generate_greedy(*model.weights, ids, static_cast<int>(n), stop);
  std::printf("%s\n", model.tokenizer->decode(out, true).c_str());
  return 0;
}

}  // namespace gptqw::cli
