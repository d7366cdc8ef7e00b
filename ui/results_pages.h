// The pages of the results view. Each subscribes itself to the run session's signals (a layer
// finished, a report is ready, results cleared, a perplexity evaluated) and keeps its own
// widgets up to date; none of them owns data the others need. A selected layer is the view's
// business: pages that let the user pick one say so with layerChosen(), and show the one the
// view selects.
#pragma once

#include <QWidget>

#include "pipeline/report.h"

class QCheckBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QTableView;

namespace gptqw::ui {

class LayerFilterModel;
class LayerTableModel;
class RunSession;
namespace plots {
class ErrorChart;
class HessianChart;
class MemoryChart;
class PerplexityChart;
}  // namespace plots

// Every quantized layer in a sortable, filterable table.
class LayersPage : public QWidget {
  Q_OBJECT
 public:
  explicit LayersPage(RunSession* session, QWidget* parent = nullptr);
  LayerTableModel* model() const { return m_layers; }
  LayerFilterModel* filter() const { return m_filter; }
  QTableView* view() const { return m_table; }
  void showSelected(int index);  // index into the run's layers
 signals:
  void layerChosen(int index);

 private:
  LayerTableModel* m_layers;
  LayerFilterModel* m_filter;
  QTableView* m_table;
  std::vector<QCheckBox*> m_kind_boxes;
};

// GPTQ's against RTN's reconstruction error of every layer.
class ErrorPage : public QWidget {
  Q_OBJECT
 public:
  explicit ErrorPage(RunSession* session, QWidget* parent = nullptr);
  plots::ErrorChart* chart() const { return m_chart; }
 signals:
  void layerChosen(int index);

 private:
  plots::ErrorChart* m_chart;
};

// The selected layer's Hessian diagonal.
class HessianPage : public QWidget {
  Q_OBJECT
 public:
  explicit HessianPage(RunSession* session, QWidget* parent = nullptr);
  plots::HessianChart* chart() const { return m_chart; }
  void showLayer(const LayerReport* layer);  // null: none selected

 private:
  plots::HessianChart* m_chart;
  QLabel* m_label;
};

// Bytes of the weights in fp16 and quantized, per layer and for the model.
class MemoryPage : public QWidget {
  Q_OBJECT
 public:
  explicit MemoryPage(RunSession* session, QWidget* parent = nullptr);
  plots::MemoryChart* chart() const { return m_chart; }

 private:
  plots::MemoryChart* m_chart;
  QLabel* m_text;
};

// Perplexity of the original, RTN and GPTQ models (or of the one model evaluated).
class PerplexityPage : public QWidget {
  Q_OBJECT
 public:
  explicit PerplexityPage(RunSession* session, QWidget* parent = nullptr);
  plots::PerplexityChart* chart() const { return m_chart; }

 private:
  plots::PerplexityChart* m_chart;
};

// What the session did, with the time of day.
class LogPage : public QWidget {
  Q_OBJECT
 public:
  explicit LogPage(RunSession* session, QWidget* parent = nullptr);
  QString text() const;
  void append(const QString& line);

 private:
  QPlainTextEdit* m_log;
};

}  // namespace gptqw::ui
