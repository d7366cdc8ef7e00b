#include "pipeline/calibration.h"

#include <random>

#include "common/error.h"
#include "common/sha256.h"

namespace gptqw {

CalibrationSet calibration_from_offsets(const std::vector<int32_t>& ids,
                                        const std::vector<int64_t>& offsets, int seqlen) {
  CalibrationSet set;
  set.seqlen = seqlen;
  set.text_tokens = static_cast<int64_t>(ids.size());
  set.offsets = offsets;
  set.tokens.reserve(offsets.size() * seqlen);
  for (int64_t o : offsets) {
    if (o < 0 || o + seqlen > set.text_tokens)
      throw ConfigError("calibration window at token " + std::to_string(o) + " does not fit a text of " +
                        std::to_string(set.text_tokens) + " tokens");
    set.tokens.insert(set.tokens.end(), ids.begin() + o, ids.begin() + o + seqlen);
  }
  return set;
}

CalibrationShortfall calibration_shortfall(int64_t n, int nsamples, int seqlen) {
  CalibrationShortfall s;
  s.windows = seqlen > 0 ? n / seqlen : 0;
  if (n < int64_t(seqlen) + 1) {
    s.kind = CalibrationShortfall::Kind::shorter_than_a_window;
    s.message = "the calibration text has " + std::to_string(n) +
                " tokens, fewer than one window of seqlen " + std::to_string(seqlen) + " + 1";
  } else if (int64_t(nsamples) * seqlen > n) {
    s.kind = CalibrationShortfall::Kind::too_few_windows;
    s.message = "nsamples " + std::to_string(nsamples) + " x seqlen " + std::to_string(seqlen) +
                " needs " + std::to_string(int64_t(nsamples) * seqlen) +
                " tokens, the calibration text has " + std::to_string(n) + " (at most " +
                std::to_string(s.windows) + " windows of this length)";
  }
  return s;
}

CalibrationSet sample_calibration(const std::vector<int32_t>& ids, int nsamples, int seqlen,
                                  uint64_t seed) {
  if (nsamples < 1) throw ConfigError("nsamples must be at least 1, got " + std::to_string(nsamples));
  if (seqlen < 2) throw ConfigError("seqlen must be at least 2, got " + std::to_string(seqlen));
  const int64_t n = static_cast<int64_t>(ids.size());
  if (const CalibrationShortfall s = calibration_shortfall(n, nsamples, seqlen);
      s.kind != CalibrationShortfall::Kind::none)
    throw ConfigError(s.message);
  // The reference draws i = random.randint(0, n - seqlen - 1) for each sample. mt19937_64 is
  // specified bit for bit by the standard, uniform_int_distribution is not, so the offset is
  // taken modulo the range (its bias is below 2^-40 for any real text) to give the same
  // windows with every standard library.
  std::mt19937_64 rng(seed);
  const uint64_t range = static_cast<uint64_t>(n - seqlen);
  std::vector<int64_t> offsets(nsamples);
  for (auto& o : offsets) o = static_cast<int64_t>(rng() % range);
  CalibrationSet set = calibration_from_offsets(ids, offsets, seqlen);
  set.seed = seed;
  return set;
}

namespace {
// The corpus's windows, with how it was read and what its joined text was.
CalibrationSet with_corpus(CalibrationSet set, const std::filesystem::path& source,
                           CalibrationCorpus& corpus, const std::string& sha) {
  set.source = source;
  set.format = corpus.format;
  set.field = corpus.field;
  set.documents = corpus.documents;
  set.files = std::move(corpus.files);
  set.source_bytes = corpus.text.size();
  set.source_sha256 = sha;
  return set;
}
}  // namespace

CalibrationSet sample_calibration(const Tokenizer& tokenizer, const std::filesystem::path& source,
                                  int nsamples, int seqlen, uint64_t seed,
                                  const CalibrationOptions& options,
                                  std::vector<int32_t>* text_ids) {
  CalibrationCorpus corpus = read_calibration_corpus(source, options);
  const std::string sha = sha256_hex(corpus.text);
  std::vector<int32_t> ids = tokenizer.encode(corpus.text, true);
  try {
    CalibrationSet set = with_corpus(sample_calibration(ids, nsamples, seqlen, seed), source, corpus, sha);
    if (text_ids) *text_ids = std::move(ids);
    return set;
  } catch (const ConfigError& e) {
    throw ConfigError(file_msg(source, e.what()));
  }
}

CalibrationSet calibration_replay(const Tokenizer& tokenizer, const std::filesystem::path& source,
                                  const CalibrationRecord& rec, const CalibrationOptions& options) {
  CalibrationCorpus corpus = read_calibration_corpus(source, options);
  const std::string sha = sha256_hex(corpus.text);
  const std::string recorded = "'" + rec.file.string() + "' of the report";
  if (!rec.sha256.empty() && (corpus.text.size() != rec.file_bytes || sha != rec.sha256))
    throw ConfigError(file_msg(source, "is not the calibration text " + recorded + ": " +
                                           std::to_string(corpus.text.size()) + " bytes, SHA-256 " +
                                           sha + ", the report's has " +
                                           std::to_string(rec.file_bytes) + " bytes, SHA-256 " +
                                           rec.sha256));
  std::vector<int32_t> ids = tokenizer.encode(corpus.text, true);
  if (int64_t(ids.size()) != rec.text_tokens)
    throw ConfigError(file_msg(source, "tokenizes to " + std::to_string(ids.size()) +
                                           " tokens with this model's tokenizer; the run of the "
                                           "report had " + std::to_string(rec.text_tokens) +
                                           " (another tokenizer, or another text than " + recorded + ")"));
  if (rec.offsets.empty() || rec.seqlen < 2)
    throw ConfigError("the report records no calibration windows (" +
                      std::to_string(rec.offsets.size()) + " of seqlen " +
                      std::to_string(rec.seqlen) + ")");
  try {
    CalibrationSet set = calibration_from_offsets(ids, rec.offsets, rec.seqlen);
    set.seed = rec.seed;
    return with_corpus(std::move(set), source, corpus, sha);
  } catch (const ConfigError& e) {
    throw ConfigError(file_msg(source, e.what()));
  }
}

}  // namespace gptqw
