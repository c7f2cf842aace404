// Files a guest creates (open with O_CREAT, creat, O_TMPFILE, mknod, symlink, link): the
// host's file system is never written, so new names live in emulated memory, for the whole
// run and for every guest process (a tmpfs laid over the host's directories). Regular files
// are shmem inodes (a hard link is a second name for the same inode, nlink counting them);
// symbolic links and FIFOs are small nodes of their own (a FIFO holds the pipe its openers
// join). Names are keyed by the canonical path of their directory plus their own name. The
// host's existing files stay read-only (EROFS for writing), and directories cannot be
// created.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "emu/fs/shmem_file.hpp"

namespace mmemu {

class Pipe;

// A created name that is not a regular file: a symbolic link (target) or a FIFO (pipe,
// kept while the FIFO exists so that its readers and writers meet), or a socket name.
struct SpecialNode {
  FileStat st;                 // type, permissions, owner, times, nlink, ino
  std::string target;          // S_IFLNK: what readlink shows
  std::shared_ptr<Pipe> fifo;  // S_IFIFO
};
using SpecialNodeRef = std::shared_ptr<SpecialNode>;

class CreatedFiles {
 public:
  struct Entry {
    std::string name;
    std::uint64_t ino;
    std::uint8_t type;  // DT_REG, DT_LNK, DT_FIFO, DT_SOCK
  };

  // The key for an absolute normalised path: realpath of its directory + "/" + its name
  // (the path itself when the directory does not resolve).
  static std::string key_of(const std::string& norm);

  ShmemInodeRef find(const std::string& key) const;
  SpecialNodeRef find_special(const std::string& key) const;
  bool exists(const std::string& key) const { return find(key) || find_special(key); }
  // A new name for `inode` (a new file, or a hard link: the caller counts nlink).
  void add(const std::string& key, ShmemInodeRef inode);
  void add_special(const std::string& key, SpecialNodeRef node);
  // unlink: the name goes; a regular file's inode lives on while another name, an open file
  // or a mapping holds it ("(deleted)" once no name is left).
  bool remove(const std::string& key);
  // rename: `to` must not name another created file (remove it first).
  void move(const std::string& from, const std::string& to);
  // The created names directly inside the (canonical) directory `dir`.
  std::vector<Entry> in_dir(const std::string& dir) const;
  bool empty() const { return files_.empty() && specials_.empty(); }
  bool has_specials() const { return !specials_.empty(); }
  // The end of the run: every name goes (their pages are freed with the last reference).
  void clear();

 private:
  std::map<std::string, ShmemInodeRef, std::less<>> files_;
  std::map<std::string, SpecialNodeRef, std::less<>> specials_;
};

}  // namespace mmemu
