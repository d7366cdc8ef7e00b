#include "common/json.h"

#include <vector>

#include "common/cancel.h"
#include "common/error.h"

namespace gptqw {

namespace {

using nlohmann::json;

// Builds the value from nlohmann's SAX events, as its own DOM parser does, and stops the parse
// (returns false) at the first container nested too deep or key given twice. Every event is
// O(1) apart from the object insertion (O(log n)), so the whole parse is linear in the input.
class DomBuilder {
 public:
  explicit DomBuilder(bool unique_keys) : m_unique_keys(unique_keys) {}

  bool null() { return value(nullptr); }
  bool boolean(bool v) { return value(v); }
  bool number_integer(json::number_integer_t v) { return value(v); }
  bool number_unsigned(json::number_unsigned_t v) { return value(v); }
  bool number_float(json::number_float_t v, const json::string_t&) { return value(v); }
  bool string(json::string_t& v) { return value(std::move(v)); }
  bool binary(json::binary_t& v) { return value(std::move(v)); }

  bool start_object(std::size_t) { return open(json::value_t::object); }
  bool start_array(std::size_t) { return open(json::value_t::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    auto& object = m_stack.back()->get_ref<json::object_t&>();
    auto [it, inserted] = object.emplace(k, nullptr);
    if (!inserted && m_unique_keys) {
      m_duplicate = k;
      return false;
    }
    m_slot = &it->second;  // a repeated key (allowed) is overwritten, as nlohmann does
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    m_error = e.what();
    // "[json.exception.parse_error.101] parse error at line 3, ..." -> "parse error at ..."
    if (auto p = m_error.find("] "); p != std::string::npos) m_error = m_error.substr(p + 2);
    return false;
  }

  json root;
  std::string m_error, m_duplicate;
  bool m_too_deep = false;

 private:
  template <class V>
  json* place(V&& v) {
    m_poll.tick();
    if (m_stack.empty()) {
      root = json(std::forward<V>(v));
      return &root;
    }
    json& top = *m_stack.back();
    if (top.is_array()) {
      auto& array = top.get_ref<json::array_t&>();
      array.emplace_back(std::forward<V>(v));
      return &array.back();
    }
    *m_slot = json(std::forward<V>(v));
    return m_slot;
  }
  template <class V>
  bool value(V&& v) {
    place(std::forward<V>(v));
    return true;
  }
  bool open(json::value_t type) {
    // As deep as the containers already open: the top-level value is at depth 0.
    if (static_cast<int>(m_stack.size()) > kMaxJsonDepth) {
      m_too_deep = true;
      return false;
    }
    m_stack.push_back(place(type));
    return true;
  }
  bool close() {
    m_stack.pop_back();
    return true;
  }

  bool m_unique_keys;
  std::vector<json*> m_stack;  // the open arrays and objects, innermost last
  json* m_slot = nullptr;      // where the value of the last key goes
  CancelPoll m_poll{8192};
};

}  // namespace

json parse_json(std::string_view text, const std::filesystem::path& file, const JsonRules& rules) {
  DomBuilder dom(rules.unique_keys);
  const bool ok = json::sax_parse(text.begin(), text.end(), &dom);
  const std::string what = rules.what.empty() ? "" : rules.what + " ";
  if (dom.m_too_deep)
    throw FormatError(file_msg(file, (rules.what.empty() ? "JSON " : what + "is ") +
                                         "nested more than " + std::to_string(kMaxJsonDepth) +
                                         " levels deep"));
  if (!dom.m_duplicate.empty())
    throw FormatError(file_msg(file, what + "has the key '" + dom.m_duplicate + "' twice"));
  if (!ok || !dom.m_error.empty())
    throw FormatError(file_msg(
        file, (rules.what.empty() ? "" : what + "is ") + "not valid JSON: " + dom.m_error));
  return std::move(dom.root);
}

json read_json_file(const std::filesystem::path& file, const InputKind& kind,
                    const JsonRules& rules) {
  return parse_json(read_input_file(file, kind), file, rules);
}

}  // namespace gptqw
