#include "common/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <system_error>

#include "common/cancel.h"
#include "common/error.h"

namespace gptqw {

namespace fs = std::filesystem;

std::string errno_text(int err) {
  return std::error_code(err, std::generic_category()).message();
}

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

std::string mib(uint64_t bytes) {
  char buf[48];
  if (bytes % kMiB == 0)
    std::snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(bytes / kMiB));
  else
    std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / double(kMiB));
  return buf;
}

FormatError too_large(const fs::path& path, const InputKind& kind, const std::string& size) {
  return FormatError(file_msg(path, "is " + size + "; " + kind.plural + " over " +
                                        mib(kind.max_bytes) + " are refused" + kind.hint));
}

}  // namespace

InputFile::InputFile(const fs::path& path, const InputKind& kind, uint64_t prefix)
    : m_path(path),
      m_kind(kind),
      // A prefix as long as the limit (or longer) is the whole file, under the same limit.
      m_prefix(prefix < kind.max_bytes ? prefix : 0) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. O_NOCTTY: a
  // terminal device must not become our controlling terminal. Regular files ignore both.
  m_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (m_fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) throw IoError(file_msg(path, "no such file"));
    if (err == ELOOP) throw IoError(file_msg(path, "symbolic link loop"));
    throw IoError(file_msg(path, "cannot open for reading: " + errno_text(err)));
  }
  struct stat st;
  if (::fstat(m_fd, &st) != 0) {
    const int err = errno;
    ::close(m_fd);
    throw IoError(file_msg(path, "cannot read its status: " + errno_text(err)));
  }
  auto refuse = [&](const std::string& why) {
    ::close(m_fd);
    m_fd = -1;
    throw IoError(file_msg(path, why));
  };
  if (S_ISDIR(st.st_mode)) refuse(std::string("is a directory, expected ") + kind.noun);
  if (!S_ISREG(st.st_mode))
    refuse(std::string("is ") + kind_of(st.st_mode) + ", not a regular file");
  m_size = static_cast<uint64_t>(st.st_size);
  m_identity = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  if (!m_prefix && m_size > kind.max_bytes) {
    ::close(m_fd);
    m_fd = -1;
    throw too_large(path, kind, mib(m_size));
  }
}

InputFile::~InputFile() {
  if (m_fd >= 0) ::close(m_fd);
}

std::string InputFile::read() {
  // What fstat said, but a file can change under us (and some, like those of /proc, say 0):
  // read until the end, and never past the limit.
  const uint64_t limit = m_prefix ? m_prefix : m_kind.max_bytes;
  std::string out;
  out.resize(static_cast<size_t>(std::min<uint64_t>(m_size, limit)));
  size_t done = 0;
  constexpr size_t kChunk = size_t(4) << 20;  // a cancellation check per 4 MiB
  for (;;) {
    if (done == out.size()) {
      if (done >= limit) {
        if (m_prefix) break;  // the prefix asked for
        // One byte more tells whether the file grew past the limit.
        char extra;
        ssize_t n = ::read(m_fd, &extra, 1);
        if (n > 0) throw too_large(m_path, m_kind, "over " + mib(m_kind.max_bytes) + " now");
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw IoError(file_msg(m_path, "read failed: " + errno_text(errno)));
        break;
      }
      out.resize(static_cast<size_t>(std::min<uint64_t>(limit, uint64_t(done) + kChunk)));
    }
    check_cancelled();
    const size_t want = std::min(out.size() - done, kChunk);
    ssize_t n = ::read(m_fd, out.data() + done, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(file_msg(m_path, "read failed: " + errno_text(errno)));
    }
    if (n == 0) break;  // end of file (it may have shrunk since fstat)
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

std::string read_input_file(const fs::path& path, const InputKind& kind) {
  return InputFile(path, kind).read();
}

bool path_is_within(const fs::path& p, const fs::path& q) {
  auto pi = p.begin(), qi = q.begin();
  for (; qi != q.end(); ++pi, ++qi) {
    if (qi->empty()) continue;  // trailing separator
    if (pi == p.end() || *pi != *qi) return false;
  }
  return true;
}

fs::path resolve_inside(const fs::path& dir, const fs::path& name) {
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  if (ec) throw IoError(file_msg(dir, "cannot resolve the folder: " + ec.message()));
  const fs::path given = dir / name;
  const fs::path resolved = fs::weakly_canonical(fs::absolute(given, ec), ec);
  if (ec) throw IoError(file_msg(given, "cannot resolve: " + ec.message()));
  if (!path_is_within(resolved, root) || resolved == root)
    throw FormatError(file_msg(given, "leads to " + resolved.string() +
                                          ", outside the model folder " + root.string() +
                                          "; files of a model folder must stay inside it"));
  return resolved;
}

}  // namespace gptqw
