#include "commands.h"
#include "args.h"
namespace gptqw::cli {
int cmd_eval(const std::vector<std::string>&) { throw UsageError("eval: in progress"); }
}
