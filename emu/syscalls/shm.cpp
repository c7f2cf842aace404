// System calls: SysV shared memory (shmget, shmat, shmdt, shmctl) over the kernel's segment
// table (emu/fs/sysv_shm.hpp). Attaching is an mmap of the segment's shmem file, so the mm
// layer does the work and the injector's sites apply as for any shared mapping.
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "emu/fs/sysv_shm.hpp"
#include "emu/syscalls/syscall.hpp"
#include "vma/file.hpp"
#include "vma/mm_syscalls.hpp"
#include "vma/vma.hpp"

namespace mmemu {

namespace {

constexpr int kIpcCreat = 01000, kIpcExcl = 02000;
constexpr int kIpcRmid = 0, kIpcSet = 1, kIpcStat = 2, kIpcInfo = 3, kShmLock = 11, kShmUnlock = 12,
              kIpc64 = 0x100;
constexpr int kShmRdonly = 010000, kShmRnd = 020000, kShmRemap = 040000, kShmExec = 0100000;
constexpr int kShmHugetlb = 04000;
// SHMMAX and SHMALL's defaults (ULONG_MAX - 2^24).
constexpr std::uint64_t kShmMax = ~0ULL - (1ULL << 24);

std::int64_t now_sec() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec;
}

// struct shmid64_ds as x86_64 and the generic 64-bit ABI (arm64) lay it out (112 bytes).
struct GuestShmid64 {
  std::int32_t key;
  std::uint32_t uid, gid, cuid, cgid, mode;
  std::uint16_t seq, pad2;
  std::uint32_t pad3;
  std::uint64_t unused1, unused2;
  std::uint64_t segsz;
  std::int64_t atime, dtime, ctime;
  std::int32_t cpid, lpid;
  std::uint64_t nattch, unused4, unused5;
};
static_assert(sizeof(GuestShmid64) == 112);

// struct shminfo64 (IPC_INFO).
struct GuestShminfo64 {
  std::uint64_t shmmax, shmmin, shmmni, shmseg, shmall, unused[4];
};

SysResult sys_shmget(SyscallContext& ctx) {
  SysvShm& t = ctx.kernel.sysv_shm();
  t.reap();
  const auto key = static_cast<std::int32_t>(ctx.arg(0));
  const std::uint64_t size = ctx.arg(1);
  const int flg = ctx.arg_int(2);
  ShmSegment* s = key == 0 ? nullptr : t.find_key(key);
  if (!s) {
    if (key != 0 && !(flg & kIpcCreat)) return SysResult::err(ENOENT);
    if (size < 1 || size > kShmMax) return SysResult::err(EINVAL);
    if (flg & kShmHugetlb) return SysResult::err(ENOMEM);  // no huge pages reserved
    auto n = t.create(key, size, static_cast<std::uint32_t>(flg), ctx.proc.cred.euid,
                      ctx.proc.cred.egid, ctx.proc.pid, now_sec());
    if (!n) return SysResult::err(n.error().code);
    return SysResult::ok(static_cast<std::uint64_t>((*n)->id));
  }
  if ((flg & kIpcCreat) && (flg & kIpcExcl)) return SysResult::err(EEXIST);
  if (s->segsz < size) return SysResult::err(EINVAL);
  return SysResult::ok(static_cast<std::uint64_t>(s->id));
}

SysResult sys_shmat(SyscallContext& ctx) {
  SysvShm& t = ctx.kernel.sysv_shm();
  t.reap();
  const int id = ctx.arg_int(0);
  vaddr_t addr = ctx.arg(1);
  const int flg = ctx.arg_int(2);
  if (id < 0) return SysResult::err(EINVAL);
  // SHMLBA: one page on x86_64, four on arm64.
  const std::uint64_t shmlba = ctx.arch() == Arch::Arm64 ? 4 * PAGE_SIZE : PAGE_SIZE;
  int mflags = MAP_SHARED;
  if (addr) {
    if (addr & (shmlba - 1)) {
      if (flg & kShmRnd) {
        addr &= ~(shmlba - 1);
        if (!addr && (flg & kShmRemap)) return SysResult::err(EINVAL);
      } else if (addr & ~PAGE_MASK) {
        return SysResult::err(EINVAL);
      }
    }
    mflags |= MAP_FIXED;
  } else if (flg & kShmRemap) {
    return SysResult::err(EINVAL);
  }
  int prot = (flg & kShmRdonly) ? PROT_READ : PROT_READ | PROT_WRITE;
  if (flg & kShmExec) prot |= PROT_EXEC;
  ShmSegment* s = t.find_id(id);
  if (!s) return SysResult::err(EINVAL);
  Mm& mm = ctx.mm();
  if (addr && !(flg & kShmRemap) && mm.find_vma_intersection(addr, addr + page_align_up(s->segsz)))
    return SysResult::err(EINVAL);
  auto r = sys_mmap(mm, addr, s->segsz, prot, mflags, s->file, 0, !(flg & kShmRdonly));
  if (!r) return SysResult::err(r.error().code);
  s->atime = now_sec();
  s->lpid = ctx.proc.pid;
  return SysResult::ok(*r);
}

SysResult sys_shmdt(SyscallContext& ctx) {
  SysvShm& t = ctx.kernel.sysv_shm();
  const vaddr_t addr = ctx.arg(0);
  if (addr & ~PAGE_MASK) return SysResult::err(EINVAL);
  Mm& mm = ctx.mm();
  CallFrame frame(mm.pt(), "shmdt");
  // The first VMA at or after addr that maps a segment from offset (vm_start - addr), then
  // every later piece of the same attachment within the segment's size.
  File* file = nullptr;
  vaddr_t end = 0;
  std::vector<std::pair<vaddr_t, vaddr_t>> pieces;
  for (Vma* v = mm.find_vma(addr); v; v = mm.find_vma(v->vm_end)) {
    const bool ours = v->vm_file && ((v->vm_start - addr) >> PAGE_SHIFT) == v->vm_pgoff;
    if (!file) {
      if (!ours || !t.segment_of(v->vm_file)) continue;
      file = v->vm_file;
      end = addr + page_align_up(file->size());
    }
    if (v->vm_start >= end) break;
    if (ours && v->vm_file == file && v->vm_end <= end) pieces.emplace_back(v->vm_start, v->vm_end);
  }
  if (!file) return SysResult::err(EINVAL);
  ShmSegment* seg = t.segment_of(file);
  seg->dtime = now_sec();
  seg->lpid = ctx.proc.pid;
  for (const auto& [s, e] : pieces)
    if (auto r = do_munmap(mm, s, e - s); !r) return SysResult::err(r.error().code);
  t.reap();
  return SysResult::ok(0);
}

SysResult sys_shmctl(SyscallContext& ctx) {
  SysvShm& t = ctx.kernel.sysv_shm();
  t.reap();
  const int id = ctx.arg_int(0);
  const int cmd = ctx.arg_int(1) & ~kIpc64;
  const vaddr_t buf = ctx.arg(2);
  if (id < 0 && cmd != kIpcInfo) return SysResult::err(EINVAL);
  if (cmd == kIpcInfo) {
    GuestShminfo64 info{};
    info.shmmax = kShmMax;
    info.shmmin = 1;
    info.shmmni = SysvShm::kShmmni;
    info.shmseg = SysvShm::kShmmni;
    info.shmall = kShmMax;
    if (!ctx.write(buf, &info, sizeof info)) return SysResult::err(EFAULT);
    return SysResult::ok(static_cast<std::uint64_t>(std::max(t.highest_index(), 0)));
  }
  ShmSegment* s = t.find_id(id);
  if (!s) return SysResult::err(EINVAL);
  switch (cmd) {
    case kIpcStat: {
      GuestShmid64 d{};
      d.key = s->key;
      d.uid = s->uid;
      d.gid = s->gid;
      d.cuid = s->cuid;
      d.cgid = s->cgid;
      d.mode = s->mode;
      d.seq = s->seq;
      d.segsz = s->segsz;
      d.atime = s->atime;
      d.dtime = s->dtime;
      d.ctime = s->ctime;
      d.cpid = s->cpid;
      d.lpid = s->lpid;
      d.nattch = s->nattch();
      if (!ctx.write(buf, &d, sizeof d)) return SysResult::err(EFAULT);
      return SysResult::ok(0);
    }
    case kIpcSet: {
      GuestShmid64 d{};
      if (!ctx.read(buf, &d, sizeof d)) return SysResult::err(EFAULT);
      s->uid = d.uid;
      s->gid = d.gid;
      s->mode = (s->mode & ~0777U) | (d.mode & 0777);
      s->ctime = now_sec();
      return SysResult::ok(0);
    }
    case kIpcRmid:
      t.remove(*s);
      return SysResult::ok(0);
    case kShmLock:
      s->mode |= SysvShm::kShmLocked;
      return SysResult::ok(0);
    case kShmUnlock:
      s->mode &= ~SysvShm::kShmLocked;
      return SysResult::ok(0);
    default:
      return SysResult::err(EINVAL);
  }
}

}  // namespace

void register_shm_syscalls(SyscallTable& t) {
  t.add(Sys::shmget, sys_shmget);
  t.add(Sys::shmat, sys_shmat);
  t.add(Sys::shmdt, sys_shmdt);
  t.add(Sys::shmctl, sys_shmctl);
}

}  // namespace mmemu
