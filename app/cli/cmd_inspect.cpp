#include "commands.h"
#include "args.h"
namespace gptqw::cli {
int cmd_inspect(const std::vector<std::string>&) { throw UsageError("inspect: in progress"); }
}
