// The base of every chart in the workbench: a widget that shows one chart under a small tool
// row (the chart's own controls on the left, "Export" on the right; the same export actions on
// the chart's context menu) and renders it to PNG or SVG. The chart library (Qt Charts) is an
// implementation detail of ui/plots/: no public header here exposes its types, so that it can
// be swapped without touching the windows that use the charts.
#pragma once

#include <QSize>
#include <QString>
#include <QWidget>

QT_BEGIN_NAMESPACE
class QChart;
class QChartView;
class QHBoxLayout;
class QPainter;
QT_END_NAMESPACE

namespace gptqw::ui::plots {

class ChartPanel : public QWidget {
  Q_OBJECT
 public:
  explicit ChartPanel(QWidget* parent = nullptr);
  ~ChartPanel() override;

  // Renders the chart at its current size (exportSize()); the PNG at device pixel ratio 2 so
  // that it stays sharp on HiDPI screens and in documents, the SVG through QSvgGenerator.
  // Both write atomically. On failure they return false and fill *error, naming the file.
  bool savePng(const QString& file, QString* error = nullptr) const;
  bool saveSvg(const QString& file, QString* error = nullptr) const;
  // The logical size the chart is rendered at: the chart area's size (laid out if the panel
  // was never shown); the PNG has twice as many pixels in each direction.
  QSize exportSize() const;
  // The line exported images carry as their title (the model and the settings the data were
  // made with), so that a picture taken out of the window still says what it shows. Not shown
  // in the window, where the panel beside it says the same.
  void setExportCaption(const QString& caption) { m_caption = caption; }
  const QString& exportCaption() const { return m_caption; }

  virtual int pointCount() const = 0;  // data points currently plotted
  virtual void clear() = 0;

  QSize sizeHint() const override { return {720, 420}; }

 protected:
  QChart* chart() const { return m_chart; }
  // Adds a control (a toggle, a combo box) to the tool row, left of "Export".
  void addToolWidget(QWidget* w);
  // Used for the file dialog's suggested name, e.g. "gptq-errors".
  virtual QString exportName() const { return QStringLiteral("chart"); }
  // Picks the light or dark chart theme from the palette, styles the attached axes, then calls
  // restyle(). Subclasses call it at the end of their constructor, after their series exist,
  // and after attaching an axis (the chart gives a new axis the theme's colours).
  void applyTheme();
  // Re-applies what a theme change resets: series colours, pens, label colours.
  virtual void restyle() {}
  bool darkPalette() const;
  // A tooltip with exact values at the mouse pointer (the charts' hovered signals use it).
  void showToolTip(const QString& text) const;
  void hideToolTip() const;

  void changeEvent(QEvent* e) override;

 private:
  void exportInteractive(bool svg);
  void render(QPainter* painter, QSize size) const;

  QChart* m_chart = nullptr;  // owned by m_view
  QChartView* m_view = nullptr;
  QHBoxLayout* m_tools = nullptr;
  bool m_applyingTheme = false;
  QString m_caption;
};

}  // namespace gptqw::ui::plots
