// Checked reading of a JSON object's fields, for every reader of user files (config.json,
// quantize_config.json, reports). nlohmann's own accessors are no guard against a damaged or
// hostile file: get<int>() converts a float such as 1e300 with a bare cast (undefined
// behaviour), wraps an integer that does not fit, and its exceptions name neither the file nor
// the field. Here each field is read as one type within a range, and each problem is one line
// naming the file, the field and what is wrong:
//   config.json: field 'rope_scaling.factor' must be a number, got "2"
//   report.json: field 'threads' must be an integer from -2147483648 to 2147483647, got 1e+12
//   report.json: field 'diag' entry 3 must be a finite number within ±3.40282e+38, got 1e+308
//   quantize_config.json: field 'bits' is missing
// Integers must be JSON integers (4.0 is not one), booleans JSON booleans. An optional field
// that is absent or null takes its fallback; a required one that is null has the wrong type.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace gptqw {

class JsonFields {
 public:
  // What a problem throws: FormatError (a damaged file: reports, quantize_config.json) or
  // ConfigError (a model configuration the program cannot use: config.json).
  enum class Throws { format, config };

  // Reads `object` where it lies: it must outlive the reader. Fields are named `prefix` + key
  // in messages ("quantization_config.bits"), after `file` when it is not empty.
  JsonFields(const nlohmann::json& object, std::filesystem::path file, std::string prefix = {},
             Throws throws = Throws::format);

  // A reader of an object inside this one, with the same file and exception.
  JsonFields nested(const nlohmann::json& object, std::string prefix) const;

  // The value of `key`; nullptr when it is absent or null (or this is not an object).
  const nlohmann::json* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Throws "<file>: field '<prefix><key>' <problem>".
  [[noreturn]] void fail(std::string_view key, const std::string& problem) const;

  // Required fields: absent, of another type or out of range is an error.
  template <class T>
  T integer(std::string_view key, T lo = std::numeric_limits<T>::lowest(),
            T hi = std::numeric_limits<T>::max()) const {
    return integer_value<T>(required(key), key, lo, hi);
  }
  // A finite number that fits T (float or double): 1e308 read as a float would become
  // infinity, which the next save writes as null.
  template <class T = double>
  T real(std::string_view key) const {
    return real_value<T>(required(key), key);
  }
  bool boolean(std::string_view key) const;
  std::string string(std::string_view key) const;
  // The object at `key`, and the objects of the list at `key`, each read with its fields named
  // `prefix` + key.
  JsonFields object(std::string_view key, std::string prefix = {}) const;
  std::vector<JsonFields> objects(std::string_view key, const std::string& prefix = {}) const;
  // Lists, every entry checked as a single field would be ("field 'perm' entry 3 must be ...").
  template <class T>
  std::vector<T> integers(std::string_view key) const {
    const nlohmann::json& a = list(key, "integers");
    std::vector<T> out;
    out.reserve(a.size());
    for (size_t i = 0; i < a.size(); ++i)
      out.push_back(integer_value<T>(a[i], key, std::numeric_limits<T>::lowest(),
                                     std::numeric_limits<T>::max(), int64_t(i)));
    return out;
  }
  template <class T = double>
  std::vector<T> reals(std::string_view key) const {
    const nlohmann::json& a = list(key, "numbers");
    std::vector<T> out;
    out.reserve(a.size());
    for (size_t i = 0; i < a.size(); ++i) out.push_back(real_value<T>(a[i], key, int64_t(i)));
    return out;
  }
  std::vector<std::string> strings(std::string_view key) const;

  // Optional fields: absent or null gives the fallback; anything else is read as above.
  template <class T>
  T integer_or(std::string_view key, T fallback, T lo = std::numeric_limits<T>::lowest(),
               T hi = std::numeric_limits<T>::max()) const {
    const nlohmann::json* v = find(key);
    return v ? integer_value<T>(*v, key, lo, hi) : fallback;
  }
  template <class T = double>
  T real_or(std::string_view key, T fallback) const {
    const nlohmann::json* v = find(key);
    return v ? real_value<T>(*v, key) : fallback;
  }
  // Any JSON number, as quantize_config.json's damp_percent has always been read: unchecked
  // beyond its type.
  double number_or(std::string_view key, double fallback) const;
  bool boolean_or(std::string_view key, bool fallback) const;
  std::string string_or(std::string_view key, std::string fallback) const;

  // A value read as the field `key` (one of its spellings, an entry of its list: `entry` >= 0),
  // with the same checks and messages.
  template <class T>
  T integer_value(const nlohmann::json& v, std::string_view key,
                  T lo = std::numeric_limits<T>::lowest(), T hi = std::numeric_limits<T>::max(),
                  int64_t entry = -1) const {
    static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
    if constexpr (std::is_signed_v<T>)
      return static_cast<T>(signed_value(v, key, lo, hi, entry));
    else
      return static_cast<T>(unsigned_value(v, key, lo, hi, entry));
  }
  template <class T>
  T real_value(const nlohmann::json& v, std::string_view key, int64_t entry = -1) const {
    static_assert(std::is_floating_point_v<T>);
    return static_cast<T>(finite_value(v, key, double(std::numeric_limits<T>::max()), entry));
  }

  // A value as messages show it: its JSON text when short, else its kind and size ("an array
  // of 40000 entries"), so that a message never copies a large input.
  static std::string shown(const nlohmann::json& v);

 private:
  const nlohmann::json& required(std::string_view key) const;
  const nlohmann::json& list(std::string_view key, const char* of) const;
  [[noreturn]] void fail_value(std::string_view key, int64_t entry, const std::string& problem) const;
  int64_t signed_value(const nlohmann::json& v, std::string_view key, int64_t lo, int64_t hi,
                       int64_t entry) const;
  uint64_t unsigned_value(const nlohmann::json& v, std::string_view key, uint64_t lo, uint64_t hi,
                          int64_t entry) const;
  double finite_value(const nlohmann::json& v, std::string_view key, double max,
                      int64_t entry) const;

  const nlohmann::json& m_j;
  std::filesystem::path m_file;
  std::string m_prefix;
  Throws m_throws;
};

}  // namespace gptqw
