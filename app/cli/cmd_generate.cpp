#include "commands.h"
#include "args.h"
namespace gptqw::cli {
int cmd_generate(const std::vector<std::string>&) { throw UsageError("generate: in progress"); }
}
