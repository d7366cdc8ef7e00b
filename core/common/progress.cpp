#include "common/progress.h"

#include "common/error.h"

namespace gptqw {

void report_progress(const ProgressFn& fn, const Progress& p) {
  if (fn && !fn(p)) throw Cancelled();
}

}  // namespace gptqw
