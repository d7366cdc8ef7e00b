// Command-line options of one gptqw command: "--name value" and "--flag". Each command states
// the options it accepts; anything else is a usage error naming the option.
#pragma once

#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace gptqw::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  // flags take no value; valued options take the next word.
  Args(const std::vector<std::string>& words, const std::set<std::string>& flags,
       const std::set<std::string>& valued);
  bool flag(const std::string& name) const { return m_flags.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  std::string require(const std::string& name) const;  // UsageError when absent
  std::string get_or(const std::string& name, const std::string& fallback) const;
  long get_int(const std::string& name, long fallback) const;
  double get_double(const std::string& name, double fallback) const;

 private:
  std::set<std::string> m_flags;
  std::vector<std::pair<std::string, std::string>> m_values;
};

}  // namespace gptqw::cli
