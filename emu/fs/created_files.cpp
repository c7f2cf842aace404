#include "emu/fs/created_files.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>

#include "emu/fs/path_lookup.hpp"

namespace mmemu {

std::string CreatedFiles::key_of(const std::string& norm) {
  const std::string dir = parent_dir(norm);
  const std::string name = norm.substr(norm.find_last_of('/') + 1);
  char resolved[PATH_MAX];
  if (!::realpath(dir.c_str(), resolved)) return norm;
  std::string key(resolved);
  if (key.back() != '/') key += '/';
  return key + name;
}

ShmemInodeRef CreatedFiles::find(const std::string& key) const {
  auto it = files_.find(key);
  return it == files_.end() ? nullptr : it->second;
}

SpecialNodeRef CreatedFiles::find_special(const std::string& key) const {
  auto it = specials_.find(key);
  return it == specials_.end() ? nullptr : it->second;
}

void CreatedFiles::add(const std::string& key, ShmemInodeRef inode) {
  files_[key] = std::move(inode);
}

void CreatedFiles::add_special(const std::string& key, SpecialNodeRef node) {
  specials_[key] = std::move(node);
}

bool CreatedFiles::remove(const std::string& key) {
  if (auto s = specials_.find(key); s != specials_.end()) {
    if (s->second->st.nlink > 0) --s->second->st.nlink;
    specials_.erase(s);
    return true;
  }
  auto it = files_.find(key);
  if (it == files_.end()) return false;
  ShmemInodeRef inode = std::move(it->second);
  files_.erase(it);
  if (inode->st.nlink > 1) {
    // Another name stays: open files now show that one (the kernel shows the dentry they
    // were opened by; mmemu keeps one name per inode).
    --inode->st.nlink;
    if (inode->path == key)
      for (const auto& [k, other] : files_)
        if (other == inode) {
          inode->renamed(k);
          break;
        }
    return true;
  }
  inode->unlinked();
  return true;
}

void CreatedFiles::move(const std::string& from, const std::string& to) {
  if (auto node = specials_.extract(from); !node.empty()) {
    node.key() = to;
    specials_.insert(std::move(node));
    return;
  }
  auto node = files_.extract(from);
  if (node.empty()) return;
  if (node.mapped()->path == from) node.mapped()->renamed(to);
  node.key() = to;
  files_.insert(std::move(node));
}

std::vector<CreatedFiles::Entry> CreatedFiles::in_dir(const std::string& dir) const {
  std::vector<Entry> out;
  const std::string prefix = dir.back() == '/' ? dir : dir + "/";
  const auto direct = [&](const std::string& key, std::string* name) {
    if (!key.starts_with(prefix)) return false;
    *name = key.substr(prefix.size());
    return name->find('/') == std::string::npos;
  };
  std::string name;
  for (auto it = files_.lower_bound(prefix); it != files_.end() && it->first.starts_with(prefix);
       ++it)
    if (direct(it->first, &name)) out.push_back({name, it->second->st.ino, DT_REG});
  for (auto it = specials_.lower_bound(prefix);
       it != specials_.end() && it->first.starts_with(prefix); ++it) {
    if (!direct(it->first, &name)) continue;
    const std::uint32_t type = it->second->st.mode & S_IFMT;
    out.push_back({name, it->second->st.ino,
                   static_cast<std::uint8_t>(type == S_IFLNK   ? DT_LNK
                                             : type == S_IFIFO ? DT_FIFO
                                                               : DT_SOCK)});
  }
  return out;
}

void CreatedFiles::clear() {
  files_.clear();
  specials_.clear();
}

}  // namespace mmemu
