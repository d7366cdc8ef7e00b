#include "common/progress.h"

#include "common/cancel.h"
#include "common/error.h"

namespace gptqw {

void report_progress(const ProgressFn& fn, const Progress& p) {
  check_cancelled();
  if (fn && !fn(p)) throw Cancelled();
}

}  // namespace gptqw
