#include "csv_export.h"

#include <charconv>
#include <optional>

#include "common/error.h"
#include "common/output_file.h"

namespace gptqw::ui {

namespace {

template <typename T>
QString shortest(T value) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, value);
  return QString::fromLatin1(buf, static_cast<qsizetype>(res.ptr - buf));
}

// The text of a number held in a variant, or nothing when the variant is not a number.
std::optional<QString> numberText(const QVariant& v) {
  switch (v.metaType().id()) {
    case QMetaType::Double:
      return exactNumber(v.toDouble());
    case QMetaType::Float:
      return exactNumber(v.toFloat());
    case QMetaType::Int:
    case QMetaType::UInt:
    case QMetaType::Long:
    case QMetaType::ULong:
    case QMetaType::LongLong:
    case QMetaType::ULongLong:
    case QMetaType::Short:
    case QMetaType::UShort:
      return v.toString();
    default:
      return std::nullopt;
  }
}

QString cellText(const QVariant& v) {
  if (auto n = numberText(v)) return *n;
  return v.toString();
}

QString fieldText(const QAbstractItemModel& model, const QModelIndex& index) {
  const QVariant exported = model.data(index, kCsvExportRole);
  if (exported.isValid()) return cellText(exported);
  if (auto n = numberText(model.data(index, kCsvSortRole))) return *n;
  return model.data(index, Qt::DisplayRole).toString();
}

QString headerText(const QAbstractItemModel& model, int column) {
  const QVariant exported = model.headerData(column, Qt::Horizontal, kCsvExportRole);
  if (exported.isValid()) return exported.toString();
  return model.headerData(column, Qt::Horizontal, Qt::DisplayRole).toString();
}


}  // namespace

QString exactNumber(double value) {
  return shortest(value);
}
QString exactNumber(float value) {
  return shortest(value);
}

QString csvField(const QString& text) {
  const bool needsQuotes =
      text.contains(u',') || text.contains(u'"') || text.contains(u'\n') || text.contains(u'\r');
  if (!needsQuotes) return text;
  QString quoted = text;
  quoted.replace(u'"', QStringLiteral("\"\""));
  return u'"' + quoted + u'"';
}

bool exportCsv(const QAbstractItemModel& model, const QString& file, QString* error) {
  const int columns = model.columnCount();
  const int rows = model.rowCount();
  // The whole text first: a table is at most a few thousand rows, and one write keeps the
  // error handling in one place.
  QString text;
  auto appendLine = [&](auto&& field) {
    for (int c = 0; c < columns; ++c) {
      if (c) text += u',';
      text += csvField(field(c));
    }
    text += QStringLiteral("\r\n");
  };
  appendLine([&](int c) { return headerText(model, c); });
  for (int r = 0; r < rows; ++r)
    appendLine([&](int c) { return fieldText(model, model.index(r, c)); });

  // Written as every output is (common/output_file.h): destination checked, a uniquely named
  // temporary beside it renamed into place.
  const QByteArray bytes = text.toUtf8();
  try {
    write_file_atomically(file.toStdString(), std::string_view(bytes.constData(), size_t(bytes.size())));
  } catch (const Error& e) {
    if (error) *error = QString::fromStdString(e.what());
    return false;
  }
  return true;
}

}  // namespace gptqw::ui
