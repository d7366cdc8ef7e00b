#include "args.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
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

std::vector<std::string> Args::get_all(const std::string& name) const {
  std::vector<std::string> all;
  for (const auto& [key, value] : m_values)
    if (key == name) all.push_back(value);
  return all;
}

std::string Args::require(const std::string& name) const {
  auto v = get(name);
  if (!v) throw UsageError("missing required option " + name);
  return *v;
}

std::string Args::get_or(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

long Args::get_int(const std::string& name, long fallback, long min, long max) const {
  auto v = get(name);
  if (!v) return fallback;
  const std::string range = "between " + std::to_string(min) + " and " + std::to_string(max);
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v->c_str(), &end, 10);
  if (v->empty() || *end || std::isspace(static_cast<unsigned char>((*v)[0])))
    throw UsageError("option " + name + " expects an integer " + range + ", got '" + *v + "'");
  if (errno == ERANGE || x < min || x > max)
    throw UsageError("option " + name + " must be " + range + ", got " + *v);
  return x;
}

double Args::get_double(const std::string& name, double fallback, double min, double max) const {
  auto v = get(name);
  if (!v) return fallback;
  auto num = [](double d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", d);
    return std::string(buf);
  };
  const std::string range = "between " + num(min) + " and " + num(max);
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end || std::isspace(static_cast<unsigned char>((*v)[0])))
    throw UsageError("option " + name + " expects a number " + range + ", got '" + *v + "'");
  if (!std::isfinite(x) || x < min || x > max)
    throw UsageError("option " + name + " must be a finite number " + range + ", got " + *v);
  return x;
}

std::vector<std::string> Args::get_list(const std::string& name, const std::string& fallback) const {
  const std::string text = get_or(name, fallback);
  std::vector<std::string> pieces;
  for (size_t pos = 0; !text.empty() && pos <= text.size();) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    pieces.push_back(text.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return pieces;
}

}  // namespace gptqw::cli
