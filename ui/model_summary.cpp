#include "model_summary.h"

#include <QFileInfo>

#include "quant/packing.h"

namespace gptqw::ui {

QString modelSummaryHtml(const ModelSummary& m, const GptqSettings* settings) {
  QString rows;
  auto row = [&](const QString& key, const QString& value) {
    rows += QString("<tr><td><b>%1</b></td><td>%2</td></tr>").arg(key.toHtmlEscaped(), value.toHtmlEscaped());
  };
  row(QObject::tr("Model"), QFileInfo(QString::fromStdString(m.path)).fileName());
  row(QObject::tr("Architecture"), QString::fromStdString(m.architecture + " (" + m.model_type + ")"));
  row(QObject::tr("Format"), QString::fromStdString(m.format));
  row(QObject::tr("Layers"), QString::number(m.num_layers));
  row(QObject::tr("Hidden / MLP"), QString("%1 / %2").arg(m.hidden_size).arg(m.intermediate_size));
  row(QObject::tr("Heads (KV)"), m.head_dim > 0 ? QObject::tr("%1 (%2), head dim %3")
                                                        .arg(m.num_heads).arg(m.num_kv_heads).arg(m.head_dim)
                                                  : QString("%1 (%2)").arg(m.num_heads).arg(m.num_kv_heads));
  if (!m.rope.empty()) row(QObject::tr("RoPE"), QString::fromStdString(m.rope));
  if (m.qk_norm) row(QObject::tr("q/k norm"), QObject::tr("RMSNorm per head before RoPE (Qwen3)"));
  row(QObject::tr("Vocabulary"), QString::number(m.vocab_size));
  row(QObject::tr("Parameters"), formatCount(m.parameters));
  row(QObject::tr("Dtype"), QString::fromStdString(m.dtype));
  row(QObject::tr("Size on disk"), formatBytes(m.bytes_on_disk));
  row(QObject::tr("Weights in fp16"), formatBytes(uint64_t(m.parameters) * 2));
  if (!m.unrecognized_config_keys.empty()) {
    QStringList keys;
    for (const auto& k : m.unrecognized_config_keys) keys << QString::fromStdString(k);
    row(QObject::tr("Config keys not read"), keys.join(", "));
  }
  if (settings) {
    const QuantConfig& q = settings->quant;
    row(QObject::tr("GPTQ checkpoint"),
        QObject::tr("%1-bit, group %2, %3, act-order %4, %5")
            .arg(q.bits)
            .arg(q.group_size < 0 ? QObject::tr("per row") : QString::number(q.group_size))
            .arg(q.sym ? QObject::tr("symmetric") : QObject::tr("asymmetric"))
            .arg(settings->desc_act ? QObject::tr("on") : QObject::tr("off"))
            .arg(QString::fromUtf8(checkpoint_format_name(settings->zero_format()).data())));
    if (!settings->modules_not_quantized.empty()) {
      QStringList names;
      for (const auto& n : settings->modules_not_quantized) names << QString::fromStdString(n);
      row(QObject::tr("Not quantized"), names.join(", "));
    }
  }
  return "<table cellspacing='2'>" + rows + "</table>";
}

}  // namespace gptqw::ui
