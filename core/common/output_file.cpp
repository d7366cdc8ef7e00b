#include "common/output_file.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE, RENAME_EXCHANGE (glibc >= 2.28)
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <random>

#include "common/cancel.h"
#include "common/error.h"
#include "common/input_file.h"

namespace gptqw {

namespace fs = std::filesystem;

namespace {

std::mutex g_inputs_mutex;
ProtectedPaths g_inputs;  // canonical paths

fs::path canonical_or_normal(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  if (ec) a = p;
  fs::path c = fs::weakly_canonical(a, ec);
  if (ec) c = a.lexically_normal();
  if (!c.has_filename() && c.has_parent_path() && c != c.root_path()) c = c.parent_path();
  return c;
}

// The destination as given, absolute and normalised ("out/" -> "out"), but with its last
// component left unresolved: a link there is the destination itself, never followed.
fs::path normalised_destination(const fs::path& dest) {
  if (dest.empty()) throw ConfigError("no destination given");
  std::error_code ec;
  fs::path a = fs::absolute(dest, ec).lexically_normal();
  if (!a.has_filename()) a = a.parent_path();
  if (!a.has_filename() || a.filename() == "." || a.filename() == "..")
    throw IoError(file_msg(dest, "is not a file or folder name that can be written"));
  return a;
}

// The destination with its folder's links resolved: what it is compared with the inputs as.
fs::path resolved_destination(const fs::path& dest) {
  return canonical_or_normal(dest.parent_path()) / dest.filename();
}

const char* type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "a regular file";
}

void check_parent(const fs::path& dest) {
  const fs::path parent = dest.parent_path();
  struct stat st;
  if (::stat(parent.c_str(), &st) != 0)
    throw IoError(file_msg(dest, "cannot be written: its parent folder " + parent.string() +
                                     " does not exist (" + errno_text(errno) + ")"));
  if (!S_ISDIR(st.st_mode))
    throw IoError(
        file_msg(dest, "cannot be written: its parent " + parent.string() + " is not a folder"));
  if (::faccessat(AT_FDCWD, parent.c_str(), W_OK | X_OK, AT_EACCESS) != 0)
    throw IoError(file_msg(dest, "cannot be written: no write access to its folder " +
                                     parent.string() + " (" + errno_text(errno) + ")"));
}

void check_protected(const fs::path& dest, const ProtectedPaths& extra, bool folder) {
  const fs::path resolved = resolved_destination(dest);
  ProtectedPaths all = protected_inputs();
  for (const ProtectedPath& p : extra)
    if (!p.path.empty()) all.push_back({canonical_or_normal(p.path), p.role});
  for (const ProtectedPath& p : all) {
    if (resolved == p.path)
      throw ConfigError(file_msg(
          dest, "is " + p.role + " (" + p.path.string() + "); an output never replaces an input"));
    if (path_is_within(resolved, p.path))
      throw ConfigError(file_msg(dest, "is inside " + p.role + " " + p.path.string() +
                                           "; nothing is ever written into an input"));
    if (folder && path_is_within(p.path, resolved))
      throw ConfigError(file_msg(dest, "contains " + p.role + " " + p.path.string() +
                                           "; replacing it would delete that input"));
  }
}

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^ uint64_t(::getpid()) << 32};
  char buf[24];
  std::snprintf(buf, sizeof buf, "%012llx",
                static_cast<unsigned long long>(rng() & 0xffffffffffffull));
  return buf;
}

// ".NAME.gptqw-tmp-<random>": hidden, so that a half-written output is not mistaken for one by
// anyone listing the folder; NAME cut so that the whole stays within NAME_MAX.
std::string temp_name(const fs::path& dest, const char* tag) {
  std::string base = dest.filename().string();
  if (base.size() > 120) base.resize(120);
  return "." + base + tag + random_suffix();
}

int write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    size_t chunk = std::min<size_t>(size, size_t{1} << 26);
    ssize_t n = ::write(fd, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return ENOSPC;  // no progress on a non-empty request: a full device
    p += n;
    size -= static_cast<size_t>(n);
    if (size > 0 && cancel_requested()) return -1;
  }
  return 0;
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);  // best effort: some file systems refuse fsync on folders
    ::close(fd);
  }
}

bool folder_is_empty(const fs::path& dir) {
  std::error_code ec;
  return fs::directory_iterator(dir, ec) == fs::directory_iterator() && !ec;
}

// The checks on an existing destination folder, before the work and again before the rename.
void check_existing_folder(const fs::path& dest, bool force, const FolderOwner& owner) {
  struct stat st;
  if (::lstat(dest.c_str(), &st) != 0) return;  // does not exist
  if (S_ISLNK(st.st_mode))
    throw IoError(file_msg(dest,
                           "is a symbolic link; it is never replaced, nor written through "
                           "(name the folder itself)"));
  if (!S_ISDIR(st.st_mode))
    throw IoError(file_msg(dest, std::string("exists and is not a folder (it is ") +
                                     type_name(st.st_mode) + "); it is not replaced"));
  if (!force)
    throw IoError(file_msg(dest,
                           "already exists; choose another folder or ask to replace it "
                           "(force)"));
  if (folder_is_empty(dest)) return;
  const std::string why = owner ? owner(dest) : "it is not empty";
  if (!why.empty())
    throw IoError(file_msg(dest, "is not replaced: " + why +
                                     "; only an empty folder or one this program exported is "
                                     "replaced"));
}

// Deletes the files of a replaced folder (now under a temporary name), after checking again
// that it is still what may be replaced: only its own plain files, then the folder itself.
// Returns false when something in it is not ours any more (it is then left alone).
bool remove_replaced(const fs::path& old, const FolderOwner& owner) {
  if (!folder_is_empty(old) && (!owner || !owner(old).empty())) return false;
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(old, ec)) {
    std::error_code e2;
    if (!e.is_regular_file(e2) || e.is_symlink(e2)) return false;
    files.push_back(e.path());
  }
  for (const fs::path& f : files) ::unlink(f.c_str());
  return ::rmdir(old.c_str()) == 0;
}

}  // namespace

void protect_input(const fs::path& path, const std::string& role) {
  if (path.empty()) return;
  ProtectedPath p{canonical_or_normal(path), role};
  std::lock_guard<std::mutex> lock(g_inputs_mutex);
  for (const ProtectedPath& q : g_inputs)
    if (q.path == p.path) return;
  g_inputs.push_back(std::move(p));
}

ProtectedPaths protected_inputs() {
  std::lock_guard<std::mutex> lock(g_inputs_mutex);
  return g_inputs;
}

// ---------------------------------------------------------------------------------------------
// Files

fs::path check_output_file(const fs::path& dest_in, const ProtectedPaths& extra) {
  const fs::path dest = normalised_destination(dest_in);
  struct stat st;
  if (::lstat(dest.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw IoError(file_msg(dest, "is a directory, expected a file name"));
    if (S_ISLNK(st.st_mode))
      throw IoError(file_msg(dest,
                             "is a symbolic link; an output is never written through a "
                             "link (name the file itself)"));
    if (!S_ISREG(st.st_mode))
      throw IoError(file_msg(
          dest, std::string("is ") + type_name(st.st_mode) + "; only a regular file is replaced"));
  }
  check_parent(dest);
  check_protected(dest, extra, false);
  return dest;
}

AtomicFile::AtomicFile(const fs::path& dest, const ProtectedPaths& extra)
    : m_dest(check_output_file(dest, extra)), m_extra(extra) {
  const fs::path parent = m_dest.parent_path();
  m_dir = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (m_dir < 0) throw IoError(file_msg(m_dest, "cannot open its folder: " + errno_text(errno)));
  for (int attempt = 0; attempt < 64 && m_fd < 0; ++attempt) {
    m_temp = temp_name(m_dest, ".gptqw-tmp-");
    m_fd =
        ::openat(m_dir, m_temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (m_fd < 0 && errno != EEXIST) break;
  }
  if (m_fd < 0) {
    const int err = errno;
    ::close(m_dir);
    m_dir = -1;
    throw IoError(file_msg(m_dest, "cannot create a temporary file beside it: " + errno_text(err)));
  }
}

AtomicFile::~AtomicFile() {
  discard();
}

void AtomicFile::discard() noexcept {
  if (m_fd >= 0) ::close(m_fd);
  m_fd = -1;
  if (m_dir >= 0) {
    if (!m_temp.empty()) ::unlinkat(m_dir, m_temp.c_str(), 0);
    ::close(m_dir);
  }
  m_dir = -1;
  m_temp.clear();
}

void AtomicFile::write(const void* data, size_t size) {
  if (m_fd < 0) throw IoError(file_msg(m_dest, "write after commit or failure"));
  if (int err = write_all(m_fd, data, size)) {
    discard();
    if (err < 0) throw Cancelled();
    throw IoError(file_msg(m_dest, "write failed: " + errno_text(err)));
  }
}

void AtomicFile::commit() {
  if (m_fd < 0) throw IoError(file_msg(m_dest, "commit after commit or failure"));
  auto fail = [&](const std::string& what, int err) {
    discard();
    throw IoError(file_msg(m_dest, what + ": " + errno_text(err)));
  };
  // Some file systems (NFS, quotas, delayed allocation) report a full disk only when the data
  // is flushed: fsync and close are checked like every write.
  if (::fsync(m_fd) != 0 && errno != EINVAL) fail("flush to disk failed", errno);
  const int rc = ::close(m_fd);
  m_fd = -1;
  if (rc != 0 && errno != EINTR) fail("close failed", errno);
  // The destination may have changed during a long run: the same rules again, just before.
  struct stat st;
  const std::string name = m_dest.filename().string();
  if (::fstatat(m_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
    discard();
    throw IoError(file_msg(m_dest, std::string("became ") + type_name(st.st_mode) +
                                       " while it was being written; not replaced"));
  }
  if (::renameat(m_dir, m_temp.c_str(), m_dir, name.c_str()) != 0)
    fail("cannot move the finished file into place", errno);
  m_temp.clear();
  ::fsync(m_dir);  // the rename itself made durable (best effort)
  ::close(m_dir);
  m_dir = -1;
}

void write_file_atomically(const fs::path& dest, std::string_view bytes,
                           const ProtectedPaths& extra) {
  AtomicFile f(dest, extra);
  f.write(bytes);
  f.commit();
}

// ---------------------------------------------------------------------------------------------
// Folders

fs::path check_output_folder(const fs::path& dest_in, bool force, const FolderOwner& owner,
                             const ProtectedPaths& extra) {
  const fs::path dest = normalised_destination(dest_in);
  check_protected(dest, extra, true);
  check_parent(dest);
  check_existing_folder(dest, force, owner);
  return dest;
}

OutputFolder::OutputFolder(const fs::path& dest, bool force, FolderOwner owner,
                           const ProtectedPaths& extra)
    : m_dest(check_output_folder(dest, force, owner, extra)),
      m_force(force),
      m_owner(std::move(owner)),
      m_extra(extra) {
  const fs::path parent = m_dest.parent_path();
  int err = 0;
  for (int attempt = 0; attempt < 64; ++attempt) {
    fs::path t = parent / temp_name(m_dest, ".gptqw-tmp-");
    if (::mkdir(t.c_str(), 0777) == 0) {
      m_temp = t;
      return;
    }
    err = errno;
    if (err != EEXIST) break;
  }
  throw IoError(file_msg(m_dest, "cannot export here: a temporary folder cannot be created in " +
                                     parent.string() + ": " + errno_text(err)));
}

OutputFolder::~OutputFolder() {
  if (!m_done && !m_temp.empty()) {
    std::error_code ec;
    fs::remove_all(m_temp, ec);  // ours, made by the constructor; links in it are not followed
  }
}

void OutputFolder::commit() {
  if (m_done) throw IoError(file_msg(m_dest, "folder committed twice"));
  fsync_dir(m_temp);
  const fs::path parent = m_dest.parent_path();
  // The destination may have changed during a long run: the same rules again, just before.
  check_existing_folder(m_dest, m_force, m_owner);
  struct stat st;
  const bool exists = ::lstat(m_dest.c_str(), &st) == 0;
  fs::path replaced;  // where the old folder went
  if (!exists) {
    // NOREPLACE: a folder created meanwhile under that name is not silently replaced (a plain
    // rename would replace an empty one).
    if (::renameat2(AT_FDCWD, m_temp.c_str(), AT_FDCWD, m_dest.c_str(), RENAME_NOREPLACE) != 0) {
      const int err = errno;
      if (err != EINVAL && err != ENOSYS)
        throw IoError(
            file_msg(m_dest, "cannot move the finished folder into place: " + errno_text(err)));
      if (::rename(m_temp.c_str(), m_dest.c_str()) != 0)  // no NOREPLACE on this file system
        throw IoError(
            file_msg(m_dest, "cannot move the finished folder into place: " + errno_text(errno)));
    }
    m_done = true;
  } else if (::renameat2(AT_FDCWD, m_temp.c_str(), AT_FDCWD, m_dest.c_str(), RENAME_EXCHANGE) ==
             0) {
    // Swapped atomically: the old folder now sits under the temporary name.
    m_done = true;
    replaced = m_temp;
  } else {
    const int err = errno;
    if (err != EINVAL && err != ENOSYS)
      throw IoError(
          file_msg(m_dest, "cannot replace with the finished folder: " + errno_text(err)));
    // No atomic exchange here: move the old folder aside, the new one in, and put the old one
    // back if the second step fails.
    const fs::path old = parent / temp_name(m_dest, ".gptqw-old-");
    if (::rename(m_dest.c_str(), old.c_str()) != 0)
      throw IoError(file_msg(m_dest, "cannot move the old folder aside: " + errno_text(errno)));
    if (::rename(m_temp.c_str(), m_dest.c_str()) != 0) {
      const int e = errno;
      ::rename(old.c_str(), m_dest.c_str());
      throw IoError(
          file_msg(m_dest, "cannot move the finished folder into place: " + errno_text(e)));
    }
    m_done = true;
    replaced = old;
  }
  fsync_dir(parent);
  if (!replaced.empty() && !remove_replaced(replaced, m_owner))
    throw IoError(file_msg(m_dest,
                           "is in place, but the folder it replaced changed during the "
                           "work and was kept, untouched, as " +
                               replaced.string()));
}

}  // namespace gptqw
