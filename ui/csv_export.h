// CSV export of any table model (the layers table, as the user sees it sorted and filtered).
// The file is for analysis elsewhere (pandas, a spreadsheet), so numbers are written at full
// precision from the model's sort role rather than as the rounded text on screen.
#pragma once

#include <QAbstractItemModel>
#include <QString>

namespace gptqw::ui {

// The roles the exporter reads. For each cell, the first that applies:
//   kCsvExportRole when valid (text or number chosen for the file, e.g. a module name whose
//     sort value is an enum),
//   kCsvSortRole when it holds a number (written as the shortest text that reads back as the
//     same value),
//   Qt::DisplayRole otherwise.
// An invalid sort value with an empty display (a method that did not run) gives an empty field.
// The header line is each column's kCsvExportRole header when valid, else its display header.
inline constexpr int kCsvSortRole = Qt::UserRole;
inline constexpr int kCsvExportRole = Qt::UserRole + 2;

// The shortest text that reads back as exactly this value (0.1 gives "0.1", a float keeps
// only a float's digits): how the export, and tooltips showing exact values, write numbers.
QString exactNumber(double value);
QString exactNumber(float value);

// One field quoted as RFC 4180 requires: in double quotes, inner quotes doubled, when it holds
// a comma, a quote or a line break; unchanged otherwise.
QString csvField(const QString& text);

// Writes the model's top-level rows in their current order, with a header line, CRLF line
// ends (RFC 4180), UTF-8. Written as every output is (common/output_file.h): the destination is
// checked (no folder, link or input of the session), the bytes go to a uniquely named temporary
// beside it, renamed into place only when complete. Returns false and sets *error (naming the
// file) on failure.
bool exportCsv(const QAbstractItemModel& model, const QString& file, QString* error = nullptr);

}  // namespace gptqw::ui
