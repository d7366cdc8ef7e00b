#include "commands.h"
#include "args.h"
namespace gptqw::cli {
int cmd_tokenize(const std::vector<std::string>&) { throw UsageError("tokenize: in progress"); }
}
