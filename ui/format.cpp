#include "format.h"

#include <array>

namespace gptqw::ui {

QString formatBytes(uint64_t bytes) {
  static const std::array<const char*, 5> units = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < units.size()) v /= 1024, ++u;
  return QStringLiteral("%1 %2").arg(QString::number(v, 'f', u ? 2 : 0), QLatin1String(units[u]));
}

QString formatCount(int64_t n) {
  static const std::array<const char*, 5> units = {"", " K", " M", " B", " T"};
  double v = static_cast<double>(n);
  size_t u = 0;
  while (v >= 1000 && u + 1 < units.size()) v /= 1000, ++u;
  return u == 0 ? QString::number(n) : QString::number(v, 'f', v < 10 ? 2 : 1) + units[u];
}

QString duration(double seconds) {
  const int s = static_cast<int>(seconds + 0.5);
  const auto two = [](int v) { return QString("%1").arg(v, 2, 10, QChar('0')); };
  return s >= 3600 ? QString("%1:%2:%3").arg(s / 3600).arg(two(s / 60 % 60), two(s % 60))
                   : QString("%1:%2").arg(s / 60).arg(two(s % 60));
}

QString methodTitle(const std::string& method) {
  if (method == "rtn") return QStringLiteral("RTN");
  if (method == "gptq") return QStringLiteral("GPTQ");
  return qstr(method);
}

QString fileProblem(const QString& file, const QString& message) {
  const QString prefix = file + ": ";
  return message.startsWith(prefix) ? message.mid(prefix.size()) : message;
}

}  // namespace gptqw::ui
