#include "pipeline/advice.h"

namespace gptqw {

std::map<LayerId, PrecisionChoice> per_module_of(const std::vector<PlannedUnit>& units,
                                                 const std::vector<PrecisionChoice>& candidates,
                                                 const PrecisionChoice& global) {
  std::map<LayerId, PrecisionChoice> out;
  for (const PlannedUnit& u : units)
    if (!(candidates[u.choice] == global))
      for (const LayerId& id : u.modules) out[id] = candidates[u.choice];
  return out;
}

}  // namespace gptqw
