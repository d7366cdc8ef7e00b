#include "plots/chart_panel.h"

#include <QAction>
#include <QBuffer>
#include <QCoreApplication>
#include <QCursor>
#include <QDir>
#include <QEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QGraphicsLayout>
#include <QGraphicsScene>
#include <QHBoxLayout>
#include <QImage>
#include <QMenu>
#include <QMessageBox>
#include <QPainter>
#include <QSvgGenerator>
#include <QToolButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <QtCharts/QAbstractAxis>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>

#include "common/error.h"
#include "common/output_file.h"

namespace gptqw::ui::plots {

namespace {

constexpr qreal kPngPixelRatio = 2;  // sharp on HiDPI screens and when scaled in documents

bool fail(QString* error, const QString& message) {
  if (error) *error = message;
  return false;
}

// Writes bytes to file atomically (a half-written image never replaces a good one), as every
// output is (common/output_file.h): destination checked, a uniquely named
// temporary beside it renamed into place.
bool writeFile(const QString& file, const QByteArray& bytes, QString* error) {
  try {
    write_file_atomically(file.toStdString(),
                          std::string_view(bytes.constData(), size_t(bytes.size())));
  } catch (const Error& e) {
    return fail(error, QString::fromStdString(e.what()));
  }
  return true;
}

// Shared by every panel: the folder the last export went to.
QString& lastExportDir() {
  static QString dir = QDir::homePath();
  return dir;
}

}  // namespace

ChartPanel::ChartPanel(QWidget* parent) : QWidget(parent) {
  m_chart = new QChart;
  // Animations would make exports depend on when they are taken, and they cost time when
  // layers stream in.
  m_chart->setAnimationOptions(QChart::NoAnimation);
  m_chart->legend()->setShowToolTips(true);  // elided legend labels stay readable
  // The default margins are sized for a free-standing chart with a rounded background; in a
  // panel they waste the space that axis titles and labels need.
  m_chart->setMargins(QMargins(6, 4, 6, 2));
  m_chart->layout()->setContentsMargins(0, 0, 0, 0);

  m_view = new QChartView(m_chart, this);  // takes ownership of the chart
  m_view->setRenderHint(QPainter::Antialiasing);
  m_view->setRenderHint(QPainter::TextAntialiasing);
  m_view->setFrameShape(QFrame::NoFrame);
  m_view->setMinimumSize(240, 160);

  auto* png = new QAction(tr("Export PNG…"), this);
  auto* svg = new QAction(tr("Export SVG…"), this);
  connect(png, &QAction::triggered, this, [this] { exportInteractive(false); });
  connect(svg, &QAction::triggered, this, [this] { exportInteractive(true); });
  m_view->setContextMenuPolicy(Qt::ActionsContextMenu);
  m_view->addActions({png, svg});

  auto* exportButton = new QToolButton(this);
  exportButton->setText(tr("Export"));
  exportButton->setToolTip(tr("Save this chart as an image"));
  exportButton->setAutoRaise(true);
  exportButton->setPopupMode(QToolButton::InstantPopup);
  auto* menu = new QMenu(exportButton);
  menu->addActions({png, svg});
  exportButton->setMenu(menu);

  m_tools = new QHBoxLayout;
  m_tools->setContentsMargins(4, 2, 4, 0);
  m_tools->addStretch(1);
  m_tools->addWidget(exportButton);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->setSpacing(0);
  layout->addLayout(m_tools);
  layout->addWidget(m_view, 1);

  setMinimumSize(320, 220);
  applyTheme();
}

ChartPanel::~ChartPanel() = default;

void ChartPanel::addToolWidget(QWidget* w) {
  m_tools->insertWidget(m_tools->count() - 2, w);
}

bool ChartPanel::darkPalette() const {
  return palette().window().color().lightness() < 128;
}

void ChartPanel::applyTheme() {
  const auto theme = darkPalette() ? QChart::ChartThemeDark : QChart::ChartThemeLight;
  if (m_chart->theme() != theme) m_chart->setTheme(theme);
  // The theme's own backgrounds (gradients, rounded corners, a shadow) look foreign in a
  // widget window; the window colour makes the chart part of it.
  m_chart->setBackgroundBrush(palette().window());
  m_chart->setBackgroundPen(Qt::NoPen);
  m_chart->setBackgroundRoundness(0);
  m_chart->setDropShadowEnabled(false);
  m_chart->legend()->setLabelColor(palette().windowText().color());
  m_chart->setTitleBrush(palette().windowText());
  // The themes' grids (the dark one's especially) compete with the data; faint lines in the
  // text colour work on any background.
  QColor grid = palette().windowText().color(), minorGrid = grid;
  grid.setAlpha(45);
  minorGrid.setAlpha(20);
  for (QAbstractAxis* axis : m_chart->axes()) {
    axis->setGridLineColor(grid);
    axis->setMinorGridLineColor(minorGrid);
  }
  restyle();
}

void ChartPanel::changeEvent(QEvent* e) {
  if (e->type() == QEvent::PaletteChange || e->type() == QEvent::ApplicationPaletteChange)
    applyTheme();
  QWidget::changeEvent(e);
}

void ChartPanel::showToolTip(const QString& text) const {
  QToolTip::showText(QCursor::pos(), text, m_view);
}

void ChartPanel::hideToolTip() const {
  QToolTip::hideText();
}

QSize ChartPanel::exportSize() const {
  // A panel that was never shown has not laid out its children yet: lay it out now so that
  // the chart area gets the panel's size rather than a default.
  if (!isVisible() && layout()) layout()->activate();
  return m_view->size().expandedTo(m_view->minimumSize());
}

void ChartPanel::render(QPainter* painter, QSize size) const {
  // Pending layout (axis ranges changed, layers streamed in) must be done before painting.
  QCoreApplication::sendPostedEvents(m_chart, QEvent::LayoutRequest);
  const QSizeF old = m_chart->size();
  const QString old_title = m_chart->title();
  if (!m_caption.isEmpty())
    m_chart->setTitle(old_title.isEmpty() ? m_caption.toHtmlEscaped()
                                          : m_caption.toHtmlEscaped() + "<br>" + old_title);
  if (old != QSizeF(size)) m_chart->resize(size);
  if (m_chart->layout()) m_chart->layout()->activate();
  painter->setRenderHint(QPainter::Antialiasing);
  painter->setRenderHint(QPainter::TextAntialiasing);
  painter->setRenderHint(QPainter::SmoothPixmapTransform);
  const QRectF target(QPointF(0, 0), QSizeF(size));
  painter->fillRect(target, palette().window());
  m_chart->scene()->render(painter, target, QRectF(m_chart->scenePos(), QSizeF(size)),
                           Qt::IgnoreAspectRatio);
  if (old != QSizeF(size)) m_chart->resize(old);
  if (!m_caption.isEmpty()) m_chart->setTitle(old_title);
}

bool ChartPanel::savePng(const QString& file, QString* error) const {
  const QSize size = exportSize();
  QImage image(size * kPngPixelRatio, QImage::Format_ARGB32_Premultiplied);
  if (image.isNull()) return fail(error, tr("Cannot render %1: chart too large").arg(file));
  image.setDevicePixelRatio(kPngPixelRatio);
  // 96 dpi per logical pixel, so that viewers show the image at its logical size.
  const int dotsPerMeter = qRound(96 * kPngPixelRatio / 0.0254);
  image.setDotsPerMeterX(dotsPerMeter);
  image.setDotsPerMeterY(dotsPerMeter);
  {
    QPainter painter(&image);
    render(&painter, size);
  }
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  if (!image.save(&buffer, "PNG")) return fail(error, tr("Cannot encode %1 as PNG").arg(file));
  return writeFile(file, bytes, error);
}

bool ChartPanel::saveSvg(const QString& file, QString* error) const {
  const QSize size = exportSize();
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  QSvgGenerator generator;
  generator.setOutputDevice(&buffer);
  generator.setSize(size);
  generator.setViewBox(QRect(QPoint(0, 0), size));
  generator.setTitle(QFileInfo(file).completeBaseName());
  generator.setDescription(tr("Exported from GPTQ Workbench"));
  {
    QPainter painter;
    if (!painter.begin(&generator)) return fail(error, tr("Cannot render %1 as SVG").arg(file));
    render(&painter, size);
  }
  return writeFile(file, bytes, error);
}

void ChartPanel::exportInteractive(bool svg) {
  const QString ext = svg ? QStringLiteral(".svg") : QStringLiteral(".png");
  const QString file =
      QFileDialog::getSaveFileName(this, svg ? tr("Export SVG") : tr("Export PNG"),
                                   QDir(lastExportDir()).filePath(exportName() + ext),
                                   svg ? tr("SVG images (*.svg)") : tr("PNG images (*.png)"));
  if (file.isEmpty()) return;
  // The dialog adds no suffix by itself on every platform; an image without one is a nuisance.
  const QString target = file.endsWith(ext, Qt::CaseInsensitive) ? file : file + ext;
  lastExportDir() = QFileInfo(target).absolutePath();
  QString error;
  if (!(svg ? saveSvg(target, &error) : savePng(target, &error)))
    QMessageBox::warning(this, tr("Export failed"), error);
}

}  // namespace gptqw::ui::plots
