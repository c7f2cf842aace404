#include "emu/fs/created_files.hpp"

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

void CreatedFiles::add(const std::string& key, ShmemInodeRef inode) {
  files_[key] = std::move(inode);
}

bool CreatedFiles::remove(const std::string& key) {
  auto it = files_.find(key);
  if (it == files_.end()) return false;
  it->second->unlinked();
  files_.erase(it);
  return true;
}

void CreatedFiles::move(const std::string& from, const std::string& to) {
  auto node = files_.extract(from);
  if (node.empty()) return;
  node.mapped()->renamed(to);
  node.key() = to;
  files_.insert(std::move(node));
}

std::vector<std::pair<std::string, ShmemInodeRef>> CreatedFiles::in_dir(
    const std::string& dir) const {
  std::vector<std::pair<std::string, ShmemInodeRef>> out;
  const std::string prefix = dir.back() == '/' ? dir : dir + "/";
  for (auto it = files_.lower_bound(prefix); it != files_.end(); ++it) {
    if (!it->first.starts_with(prefix)) break;
    const std::string name = it->first.substr(prefix.size());
    if (name.find('/') == std::string::npos) out.emplace_back(name, it->second);
  }
  return out;
}

void CreatedFiles::clear() {
  files_.clear();
}

}  // namespace mmemu
