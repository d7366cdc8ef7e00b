#include "common/json_fields.h"

#include <cmath>
#include <sstream>

#include "common/error.h"

namespace gptqw {

using nlohmann::json;

namespace {

// Whether v's JSON text is at most `budget` characters or so, found without writing it out: a
// value as large as the input file must cost no more than its first few entries.
bool short_enough(const json& v, int64_t& budget) {
  budget -= v.is_string() ? int64_t(v.get_ref<const std::string&>().size()) + 2
            : v.is_structured() ? 2
                                : 24;
  if (budget < 0) return false;
  if (!v.is_structured()) return true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (v.is_object()) budget -= int64_t(it.key().size()) + 4;
    if (!short_enough(*it, budget)) return false;
  }
  return true;
}

std::string count(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

JsonFields::JsonFields(const json& object, std::filesystem::path file, std::string prefix,
                       Throws throws)
    : m_j(object), m_file(std::move(file)), m_prefix(std::move(prefix)), m_throws(throws) {}

JsonFields JsonFields::nested(const json& object, std::string prefix) const {
  return JsonFields(object, m_file, std::move(prefix), m_throws);
}

std::string JsonFields::shown(const json& v) {
  int64_t budget = 80;
  if (short_enough(v, budget)) return v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (v.is_string())
    return "a string of " + count(v.get_ref<const std::string&>().size(), "byte", "bytes");
  if (v.is_array()) return "an array of " + count(v.size(), "entry", "entries");
  return "an object of " + count(v.size(), "key", "keys");
}

void JsonFields::fail(std::string_view key, const std::string& problem) const {
  std::string message = "field '" + m_prefix + std::string(key) + "' " + problem;
  if (!m_file.empty()) message = file_msg(m_file, message);
  if (m_throws == Throws::config) throw ConfigError(message);
  throw FormatError(message);
}

void JsonFields::fail_value(std::string_view key, int64_t entry, const std::string& problem) const {
  fail(key, entry >= 0 ? "entry " + std::to_string(entry) + " " + problem : problem);
}

const json* JsonFields::find(std::string_view key) const {
  if (!m_j.is_object()) return nullptr;
  const auto it = m_j.find(std::string(key));
  return it == m_j.end() || it->is_null() ? nullptr : &*it;
}

const json& JsonFields::required(std::string_view key) const {
  if (m_j.is_object())
    if (const auto it = m_j.find(std::string(key)); it != m_j.end()) return *it;
  fail(key, "is missing");
}

const json& JsonFields::list(std::string_view key, const char* of) const {
  const json& a = required(key);
  if (!a.is_array()) fail(key, std::string("must be a list of ") + of + ", got " + shown(a));
  return a;
}

int64_t JsonFields::signed_value(const json& v, std::string_view key, int64_t lo, int64_t hi,
                                 int64_t entry) const {
  if (!v.is_number_integer()) fail_value(key, entry, "must be an integer, got " + shown(v));
  // The parser stores every integer >= 0 as unsigned: one above INT64_MAX must not wrap.
  const bool fits = v.is_number_unsigned()
                        ? hi >= 0 && v.get<uint64_t>() <= static_cast<uint64_t>(hi) &&
                              (lo <= 0 || v.get<uint64_t>() >= static_cast<uint64_t>(lo))
                        : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  if (!fits)
    fail_value(key, entry,
               "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                   ", got " + shown(v));
  return v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
}

uint64_t JsonFields::unsigned_value(const json& v, std::string_view key, uint64_t lo, uint64_t hi,
                                    int64_t entry) const {
  if (!v.is_number_integer()) fail_value(key, entry, "must be an integer, got " + shown(v));
  // A value built in memory (not parsed) may hold a non-negative integer as signed.
  const bool negative = !v.is_number_unsigned() && v.get<int64_t>() < 0;
  const uint64_t u = negative ? 0 : v.is_number_unsigned() ? v.get<uint64_t>()
                                                           : static_cast<uint64_t>(v.get<int64_t>());
  if (negative || u < lo || u > hi)
    fail_value(key, entry,
               "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                   ", got " + shown(v));
  return u;
}

double JsonFields::finite_value(const json& v, std::string_view key, double max,
                                int64_t entry) const {
  if (!v.is_number()) fail_value(key, entry, "must be a number, got " + shown(v));
  const double d = v.get<double>();
  if (!std::isfinite(d) || std::abs(d) > max) {
    std::ostringstream range;
    if (max < std::numeric_limits<double>::max()) range << " within ±" << max;
    fail_value(key, entry, "must be a finite number" + range.str() + ", got " + shown(v));
  }
  return d;
}

bool JsonFields::boolean(std::string_view key) const {
  const json& v = required(key);
  if (!v.is_boolean()) fail(key, "must be true or false, got " + shown(v));
  return v.get<bool>();
}

std::string JsonFields::string(std::string_view key) const {
  const json& v = required(key);
  if (!v.is_string()) fail(key, "must be a string, got " + shown(v));
  return v.get<std::string>();
}

JsonFields JsonFields::object(std::string_view key, std::string prefix) const {
  const json& v = required(key);
  if (!v.is_object()) fail(key, "must be an object, got " + shown(v));
  return nested(v, std::move(prefix));
}

std::vector<JsonFields> JsonFields::objects(std::string_view key, const std::string& prefix) const {
  const json& a = list(key, "objects");
  std::vector<JsonFields> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_object()) fail_value(key, int64_t(i), "must be an object, got " + shown(a[i]));
    out.push_back(nested(a[i], prefix));
  }
  return out;
}

std::vector<std::string> JsonFields::strings(std::string_view key) const {
  const json& a = list(key, "strings");
  std::vector<std::string> out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_string())
      fail_value(key, int64_t(i), "must be a string, got " + shown(a[i]));
    out.push_back(a[i].get<std::string>());
  }
  return out;
}

double JsonFields::number_or(std::string_view key, double fallback) const {
  const json* v = find(key);
  if (!v) return fallback;
  if (!v->is_number()) fail(key, "must be a number, got " + shown(*v));
  return v->get<double>();
}

bool JsonFields::boolean_or(std::string_view key, bool fallback) const {
  return has(key) ? boolean(key) : fallback;
}

std::string JsonFields::string_or(std::string_view key, std::string fallback) const {
  return has(key) ? string(key) : std::move(fallback);
}

}  // namespace gptqw
