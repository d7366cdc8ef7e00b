// Numbers, durations, paths and messages as the window shows them.
#pragma once

#include <QString>
#include <cstdint>
#include <filesystem>
#include <string>

namespace gptqw::ui {

// "1.23 MiB", "17 B" (binary units, as the CLI prints sizes).
QString formatBytes(uint64_t bytes);
// "6.74 B", "260.0 K".
QString formatCount(int64_t n);
// "4:05", "1:02:03".
QString duration(double seconds);

inline QString qstr(const std::string& s) { return QString::fromStdString(s); }
inline std::filesystem::path fspath(const QString& s) { return std::filesystem::path(s.toStdString()); }

// A quantization method's name as the window shows it: "RTN", "GPTQ" (others as given).
QString methodTitle(const std::string& method);

// The reason a file could not be used, without the path the window shows beside it: "file is
// empty", not "unreadable".
QString fileProblem(const QString& file, const QString& message);

}  // namespace gptqw::ui
