// Regular files a guest creates (open with O_CREAT, creat, O_TMPFILE): the host's file
// system is never written, so new files live in emulated memory as shmem inodes, by name,
// for the whole run and for every guest process (a tmpfs laid over the host's directories).
// Names are keyed by the canonical path of their directory plus their own name. The host's
// existing files stay read-only (EROFS for writing), and directories cannot be created.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "emu/fs/shmem_file.hpp"

namespace mmemu {

class CreatedFiles {
 public:
  // The key for an absolute normalised path: realpath of its directory + "/" + its name
  // (the path itself when the directory does not resolve).
  static std::string key_of(const std::string& norm);

  ShmemInodeRef find(const std::string& key) const;
  void add(const std::string& key, ShmemInodeRef inode);
  // unlink: the name goes, the inode lives on while it is open or mapped ("(deleted)").
  bool remove(const std::string& key);
  // rename: `to` must not name another created file (remove it first).
  void move(const std::string& from, const std::string& to);
  // The created names directly inside the (canonical) directory `dir`.
  std::vector<std::pair<std::string, ShmemInodeRef>> in_dir(const std::string& dir) const;
  bool empty() const { return files_.empty(); }
  // The end of the run: every name goes (their pages are freed with the last reference).
  void clear();

 private:
  std::map<std::string, ShmemInodeRef, std::less<>> files_;
};

}  // namespace mmemu
