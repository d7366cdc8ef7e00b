#include "settings_words.h"

#include "common/error.h"

namespace gptqw::cli {

namespace {

using Remedy = SettingsRemedy;

// "64 or 32", "64, 32 or -1"; -1 as the flag takes it.
std::string group_sizes(const std::vector<int>& sizes) {
  std::string s;
  for (size_t i = 0; i < sizes.size(); ++i)
    s += (i == 0 ? "" : i + 1 == sizes.size() ? " or " : ", ") + std::to_string(sizes[i]);
  return s;
}

std::string module_list(const std::vector<LinearKind>& modules) {
  std::string s;
  for (LinearKind k : modules) s += (s.empty() ? "" : ",") + std::string(linear_name(k));
  return s;
}

// The ways out of a problem that stops the run, joined: "choose --group-size 64 or 32, or
// quantize them anyway with --pad-unloadable (...)".
std::string ways_out(const std::vector<SettingsRemedy>& remedies) {
  std::vector<int> sizes;
  std::vector<std::string> ways;
  for (const Remedy& r : remedies) switch (r.kind) {
      case Remedy::Kind::use_group_size: sizes.push_back(int(r.value)); break;
      case Remedy::Kind::keep_in_fp16:
        ways.push_back("leave them unquantized with --skip-modules " + module_list(r.modules));
        break;
      case Remedy::Kind::quantize_padded:
        ways.push_back("quantize them anyway with --pad-unloadable: an export then writes them "
                       "zero-padded");
        break;
      case Remedy::Kind::fewer_samples:
        ways.push_back("use --nsamples " + std::to_string(r.value) + " or fewer");
        break;
      case Remedy::Kind::shorter_windows:
        ways.push_back("use --seqlen " + std::to_string(r.value) + " or less");
        break;
    }
  if (!sizes.empty()) ways.insert(ways.begin(), "choose --group-size " + group_sizes(sizes));
  std::string s;
  for (const std::string& w : ways) s += (s.empty() ? "" : ", or ") + w;
  return s;
}

}  // namespace

std::string describe(const ExportIssue& i) {
  std::string s = i.severity == ExportIssue::Severity::error ? "error: " : "warning: ";
  if (!i.module.empty()) s += i.module + " " + shape_str({i.out_features, i.in_features}) + ": ";
  s += i.message;
  const std::string keep = "leave the module unquantized with --skip-modules " + i.module +
                           " (stored as a float weight, listed in modules_not_quantized)";
  if (!i.fix_group_sizes.empty()) {
    s += ". Use --group-size " + group_sizes(i.fix_group_sizes) +
         (i.fix_group_sizes.front() == -1
              ? " (one group per row; no group size of 32, 64 or 128 divides the in_features "
                "of every quantized module)"
              : " (whole groups in every quantized module)");
    if (i.fix_by_keeping_module) s += ", or " + keep;
    s += ".";
  } else if (i.fix_by_keeping_module) {
    s += ". No group size changes this; " + keep + ".";
  } else if (i.kind == ExportIssue::Kind::fused_partly_kept) {
    s += " (--skip-modules)";
  }
  return s;
}

std::vector<std::string> describe(const SettingsProblem& p) {
  std::vector<std::string> lines;
  switch (p.kind) {
    case SettingsProblem::Kind::kept_for_loaders:
      for (const UnloadableModule& m : p.unloadable)
        lines.push_back("note: " + std::string(linear_name(m.kind)) + " " +
                        shape_str({m.out_features, m.in_features}) + " stays in fp16: " + m.reason +
                        " (GPTQModel, AutoGPTQ and vLLM could not load it quantized; "
                        "--pad-unloadable quantizes it anyway)");
      break;
    case SettingsProblem::Kind::export_issue:
      for (const ExportIssue& i : p.issues) lines.push_back(describe(i));
      break;
    default: {
      const std::string ways = ways_out(p.remedies);
      lines.push_back(p.message + (ways.empty() ? "" : "\n(" + ways + ")"));
    }
  }
  return lines;
}

}  // namespace gptqw::cli
