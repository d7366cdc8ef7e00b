#include "args.h"

#include <cstdlib>

namespace gptqw::cli {

Args::Args(const std::vector<std::string>& words, const std::set<std::string>& flags,
           const std::set<std::string>& valued) {
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (flags.count(w)) {
      m_flags.insert(w);
    } else if (valued.count(w)) {
      if (i + 1 >= words.size()) throw UsageError("option " + w + " needs a value");
      m_values.emplace_back(w, words[++i]);
    } else {
      throw UsageError("unknown option '" + w + "'");
    }
  }
}

std::optional<std::string> Args::get(const std::string& name) const {
  for (auto it = m_values.rbegin(); it != m_values.rend(); ++it)
    if (it->first == name) return it->second;
  return std::nullopt;
}

std::string Args::require(const std::string& name) const {
  auto v = get(name);
  if (!v) throw UsageError("missing required option " + name);
  return *v;
}

std::string Args::get_or(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

long Args::get_int(const std::string& name, long fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  long x = std::strtol(v->c_str(), &end, 10);
  if (v->empty() || *end) throw UsageError("option " + name + " expects an integer, got '" + *v + "'");
  return x;
}

double Args::get_double(const std::string& name, double fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end) throw UsageError("option " + name + " expects a number, got '" + *v + "'");
  return x;
}

}  // namespace gptqw::cli
