// The one way every output is written: the export folder, the report, a safetensors file, and
// the window's CSV, PNG, SVG and report saves.
//   - The destination is checked before any long work starts (check_output_file /
//     check_output_folder): its parent exists, is a folder and is writable; the destination is
//     not a symbolic link, not a folder where a file is wanted (nor a file where a folder is),
//     not a FIFO or device, not inside an input of the run and not one of them (the model
//     folder or file, the tokenizer, the texts: registered by their readers, see
//     protect_input()), and does not contain one.
//   - The bytes go to a uniquely named temporary created exclusively (O_CREAT | O_EXCL |
//     O_NOFOLLOW, a fresh mkdir for a folder) in the destination's own folder, are flushed to
//     disk (fsync), and the temporary is renamed into place; on any failure or cancellation it
//     is removed and the destination is as it was. A symbolic link planted where the temporary
//     goes makes the creation fail instead of redirecting the write.
//   - An existing folder is replaced only when asked (force) and only when it is empty or
//     recognised as one this program wrote (the caller says how: see FolderOwner); anything
//     else is refused with the reason.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace gptqw {

// A path no output may replace, write into or contain, and what it is in messages
// ("the source model folder", "the calibration text").
struct ProtectedPath {
  std::filesystem::path path;
  std::string role;
};
using ProtectedPaths = std::vector<ProtectedPath>;

// Registers an input of this process (a model folder or file, a tokenizer, a text): every
// later output check refuses to touch it. Thread-safe; the readers call it (open_weights,
// load_tokenizer, read_text_file), so the CLI and the window get the same protection.
void protect_input(const std::filesystem::path& path, const std::string& role);
// The registered inputs (for messages and tests).
ProtectedPaths protected_inputs();

// Checks that `dest` can be written as a file (see the header comment); `extra` adds paths to
// the registered inputs. Returns the absolute, normalised destination. Throws IoError (parent
// missing or not writable, destination a folder, link or special file) or ConfigError (an
// input would be touched), naming the destination and the reason.
std::filesystem::path check_output_file(const std::filesystem::path& dest,
                                        const ProtectedPaths& extra = {});

// A file written through a temporary beside its destination. The constructor checks the
// destination (check_output_file) and creates the temporary; write() appends; commit() flushes,
// checks the destination again and renames the temporary over it. Destroyed without commit(),
// the temporary is removed. Every error is an IoError naming the destination.
class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& dest, const ProtectedPaths& extra = {});
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  void commit();
  const std::filesystem::path& destination() const { return m_dest; }

 private:
  void discard() noexcept;

  std::filesystem::path m_dest;  // absolute, normalised
  ProtectedPaths m_extra;
  int m_dir = -1;  // the destination's folder, held open
  int m_fd = -1;
  std::string m_temp;  // name of the temporary inside m_dir
};

// AtomicFile(dest, extra), write(bytes), commit().
void write_file_atomically(const std::filesystem::path& dest, std::string_view bytes,
                           const ProtectedPaths& extra = {});

// Says whether an existing folder may be replaced: an empty string when it may (it is recognised
// as this program's output), else the reason it may not ("contains 'notes.txt', which an export
// does not write"). Empty folders are always replaceable and never reach it.
using FolderOwner = std::function<std::string(const std::filesystem::path& dir)>;

// Checks that `dest` can be created or replaced as a folder (see the header comment). An
// existing destination is refused unless `force`, and with force unless it is a real folder
// (not a link) that is empty or that `owner` recognises. Returns the absolute, normalised
// destination; throws IoError / ConfigError naming it and the reason.
std::filesystem::path check_output_folder(const std::filesystem::path& dest, bool force,
                                          const FolderOwner& owner,
                                          const ProtectedPaths& extra = {});

// A folder written through a temporary folder beside its destination: the constructor checks
// the destination (check_output_folder) and creates the temporary (hidden, same parent, so the
// final rename stays on one file system); files are written into temp() with AtomicFile;
// commit() checks the destination again and moves the folder into place (an atomic exchange of
// the two names when replacing, where the file system supports it), then deletes the replaced
// folder's files. Destroyed without commit(), the temporary folder is removed.
class OutputFolder {
 public:
  OutputFolder(const std::filesystem::path& dest, bool force, FolderOwner owner,
               const ProtectedPaths& extra = {});
  ~OutputFolder();
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;

  const std::filesystem::path& temp() const { return m_temp; }
  const std::filesystem::path& destination() const { return m_dest; }
  void commit();

 private:
  std::filesystem::path m_dest, m_temp;
  bool m_force;
  FolderOwner m_owner;
  ProtectedPaths m_extra;
  bool m_done = false;
};

}  // namespace gptqw
