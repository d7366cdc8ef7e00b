// The gptqw commands; each lives in its own cmd_<name>.cpp and returns the process exit code.
// words: the arguments after the command name.
#pragma once

#include <string>
#include <vector>

namespace gptqw::cli {

int cmd_tokenize(const std::vector<std::string>& words);
int cmd_inspect(const std::vector<std::string>& words);
int cmd_eval(const std::vector<std::string>& words);
int cmd_generate(const std::vector<std::string>& words);
int cmd_quantize(const std::vector<std::string>& words);
int cmd_compare(const std::vector<std::string>& words);
int cmd_calibration_matrix(const std::vector<std::string>& words);
int cmd_advise(const std::vector<std::string>& words);

}  // namespace gptqw::cli
