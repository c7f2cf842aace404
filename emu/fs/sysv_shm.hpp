// System V shared memory segments (shmget/shmat/shmdt/shmctl): one table per run (one IPC
// namespace for every guest process). A segment is a shmem file named "/SYSV<key>
// (deleted)" whose inode number is its id; attaching maps it MAP_SHARED, so fork, exit and
// munmap need no hooks: as in Linux, shm_nattch counts the VMAs that map the segment (a
// split VMA counts twice), and a segment removed with IPC_RMID goes when it reaches zero.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "emu/syscalls/sys_result.hpp"
#include "mmu/machine.hpp"

namespace mmemu {

class File;

struct ShmSegment {
  int id = 0;
  std::int32_t key = 0;  // IPC_PRIVATE (0) once removed
  std::uint32_t uid = 0, gid = 0, cuid = 0, cgid = 0;
  std::uint32_t mode = 0;  // permission bits | SHM_DEST (01000) | SHM_LOCKED (02000)
  std::uint16_t seq = 0;
  std::uint64_t segsz = 0;  // as requested, not rounded
  std::int64_t atime = 0, dtime = 0, ctime = 0;
  int cpid = 0, lpid = 0;
  File* file = nullptr;  // one reference held by the table
  std::uint64_t nattch() const;
};

class SysvShm {
 public:
  static constexpr std::uint32_t kShmDest = 01000, kShmLocked = 02000;
  static constexpr int kShmmni = 4096;

  explicit SysvShm(Machine& m) : m_(m) {}
  ~SysvShm() { clear(); }
  SysvShm(const SysvShm&) = delete;
  SysvShm& operator=(const SysvShm&) = delete;

  // newseg: a segment of `size` bytes (no pages yet). ENOSPC when SHMMNI ids are in use.
  Result<ShmSegment*> create(std::int32_t key, std::uint64_t size, std::uint32_t mode,
                             std::uint32_t uid, std::uint32_t gid, int pid, std::int64_t now);
  ShmSegment* find_key(std::int32_t key);
  ShmSegment* find_id(int id);
  // IPC_RMID: the key goes at once, the segment when nothing maps it any more.
  void remove(ShmSegment& s);
  // Destroys removed segments that are no longer mapped (shm_close's shm_destroy).
  void reap();
  ShmSegment* segment_of(const File* f);  // the segment whose file f is, or nullptr
  int highest_index() const;
  std::size_t count() const { return segs_.size(); }
  void clear();  // the end of the run

 private:
  Machine& m_;
  std::map<int, ShmSegment> segs_;  // by id
  std::uint16_t next_seq_ = 0;
};

}  // namespace mmemu
