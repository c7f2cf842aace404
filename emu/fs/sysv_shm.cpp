#include "emu/fs/sysv_shm.hpp"

#include <fmt/format.h>

#include "vma/file.hpp"

namespace mmemu {

std::uint64_t ShmSegment::nattch() const {
  return file->i_mmap.size();
}

Result<ShmSegment*> SysvShm::create(std::int32_t key, std::uint64_t size, std::uint32_t mode,
                                    std::uint32_t uid, std::uint32_t gid, int pid,
                                    std::int64_t now) {
  // ipc_idr_alloc: the lowest free index, with a sequence number that changes per
  // allocation so a stale id does not find the new segment (id = seq * SHMMNI... as IPCMNI).
  int idx = 0;
  std::map<int, bool> used;
  for (const auto& [id, s] : segs_)
    used[id % 32768] = true;
  while (idx < kShmmni && used.count(idx))
    ++idx;
  if (idx >= kShmmni) return fail(ENOSPC);
  const std::uint16_t seq = next_seq_++;
  const int id = static_cast<int>(seq % 65536) * 32768 + idx;
  File* f = File::create_shmem_file(
      m_, fmt::format("/SYSV{:08x} (deleted)", static_cast<std::uint32_t>(key)), 0);
  f->set_size(size);
  f->set_ino(static_cast<std::uint64_t>(id));
  ShmSegment s;
  s.id = id;
  s.key = key;
  s.uid = s.cuid = uid;
  s.gid = s.cgid = gid;
  s.mode = mode & 0777;
  s.seq = seq;
  s.segsz = size;
  s.ctime = now;
  s.cpid = pid;
  s.file = f;
  return &segs_.emplace(id, s).first->second;
}

ShmSegment* SysvShm::find_key(std::int32_t key) {
  for (auto& [id, s] : segs_)
    if (s.key == key && !(s.mode & kShmDest)) return &s;
  return nullptr;
}

ShmSegment* SysvShm::find_id(int id) {
  auto it = segs_.find(id);
  return it == segs_.end() ? nullptr : &it->second;
}

void SysvShm::remove(ShmSegment& s) {
  s.mode |= kShmDest;
  s.key = 0;  // IPC_PRIVATE: no later shmget finds it
  reap();
}

void SysvShm::reap() {
  for (auto it = segs_.begin(); it != segs_.end();) {
    if ((it->second.mode & kShmDest) && it->second.nattch() == 0) {
      it->second.file->put();
      it = segs_.erase(it);
    } else {
      ++it;
    }
  }
}

ShmSegment* SysvShm::segment_of(const File* f) {
  for (auto& [id, s] : segs_)
    if (s.file == f) return &s;
  return nullptr;
}

int SysvShm::highest_index() const {
  int hi = -1;
  for (const auto& [id, s] : segs_)
    hi = std::max(hi, id % 32768);
  return hi;
}

void SysvShm::clear() {
  for (auto& [id, s] : segs_)
    s.file->put();
  segs_.clear();
}

}  // namespace mmemu
