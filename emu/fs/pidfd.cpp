#include "emu/fs/pidfd.hpp"

#include "emu/kernel/kernel.hpp"
#include "emu/kernel/process.hpp"

namespace mmemu {

namespace {
constexpr unsigned kPollIn = 0x1, kPollHup = 0x10, kPollRdNorm = 0x40;
constexpr int kORdwr = 2;
}  // namespace

PidfdFile::PidfdFile(Kernel& k, int pid, int flags)
    : OpenFile(kORdwr | (flags & (kPidfdNonblock | kPidfdThread))), kernel_(k), pid_(pid) {}

std::string_view PidfdFile::kind() const {
  return "pidfd";
}

std::string PidfdFile::path() const {
  return "anon_inode:[pidfd]";
}

Result<FileStat> PidfdFile::stat() const {
  FileStat st;
  st.mode = 0700;  // pidfs: no S_IFMT bits
  st.ino = static_cast<std::uint64_t>(pid_);
  if (const Process* p = process()) {
    st.uid = p->cred.uid;
    st.gid = p->cred.gid;
  }
  return st;
}

Process* PidfdFile::process() const {
  return kernel_.find(pid_);
}

unsigned PidfdFile::poll(WaitQueue** wq) {
  *wq = &kernel_.pidfd_wait();
  const Process* p = process();
  if (!p) return kPollIn | kPollRdNorm | kPollHup;
  if (p->state == ProcState::Zombie) return kPollIn | kPollRdNorm;
  return 0;
}

Result<std::shared_ptr<PidfdFile>> pidfd_of(const Process& p, int fd) {
  if (!p.fds) return fail(EBADF);
  OpenFileRef f = p.fds->get(fd);
  if (!f || f->kind() != "pidfd") return fail(EBADF);
  return std::static_pointer_cast<PidfdFile>(f);
}

}  // namespace mmemu
