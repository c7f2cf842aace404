// Pipes (pipe/pipe2): a 64 KiB buffer shared by a read end and a write end, with Linux's
// pipe_read/pipe_write semantics: reads block while empty and writers exist (EOF once none
// is left), writes of up to PIPE_BUF bytes are atomic, larger ones are split and block
// until done, writing with no reader raises SIGPIPE and fails with EPIPE, O_NONBLOCK gives
// EAGAIN. Blocked callers sleep on the pipe's wait queues and retry their call when woken.
// A FIFO (mknod S_IFIFO) holds one Pipe that its openers join (fifo_open below).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>

#include "emu/fs/fd.hpp"

namespace mmemu {

class Pipe {
 public:
  static constexpr std::size_t kDefaultCapacity = 65536;  // 16 pages
  static constexpr std::size_t kPipeBuf = 4096;           // PIPE_BUF: atomic writes
  static constexpr std::size_t kMaxSize = 1048576;        // /proc/sys/fs/pipe-max-size

  explicit Pipe(std::uint64_t ino) : ino_(ino) {}
  std::uint64_t ino() const { return ino_; }
  std::size_t size() const { return buf_.size(); }
  std::size_t capacity() const { return capacity_; }
  int readers() const { return readers_; }
  int writers() const { return writers_; }
  // F_SETPIPE_SZ: rounds up to a power-of-two number of pages; EBUSY below the contents,
  // EPERM above kMaxSize (an unprivileged caller), EINVAL for 0.
  Result<std::size_t> set_capacity(std::uint64_t bytes);
  // Puts bytes back at the front (a read whose copy to the guest faulted).
  void unread(std::span<const std::uint8_t> bytes);

 private:
  friend class PipeEnd;
  std::uint64_t ino_;
  std::size_t capacity_ = kDefaultCapacity;
  std::deque<std::uint8_t> buf_;
  int readers_ = 0, writers_ = 0;
  WaitQueue read_wait_;   // readers waiting for data (or for the last writer to go)
  WaitQueue write_wait_;  // writers waiting for room (or for the last reader to go)
  // Bytes a blocked writer already put in the pipe, by pid: its retried call continues
  // after them instead of writing them twice.
  std::map<int, std::uint64_t> partial_;
  // Named pipes: how many times each side was opened (an opener waits for the other side's
  // count to move), with the ends of the openers waiting for it, by pid (a retried open
  // takes its end back) and the count they saw.
  std::uint64_t r_counter_ = 0, w_counter_ = 0;
  WaitQueue open_wait_;
  std::map<int, std::pair<OpenFileRef, std::uint64_t>> opening_;
  friend Result<OpenFileRef> fifo_open(SyscallContext&, const std::shared_ptr<Pipe>&, int);
  friend SysResult fifo_wait(SyscallContext&, const OpenFileRef&);
};

class PipeEnd final : public OpenFile {
 public:
  // flags: O_RDONLY or O_WRONLY plus O_NONBLOCK/O_DIRECT as pipe2 gave them; O_RDWR (a FIFO
  // opened for both) is a reader and a writer at once.
  PipeEnd(std::shared_ptr<Pipe> pipe, int flags);
  ~PipeEnd() override;

  std::string_view kind() const override { return "pipe"; }
  std::string path() const override;
  SysResult read(SyscallContext& ctx, std::span<std::uint8_t> buf) override;
  SysResult write(SyscallContext& ctx, std::span<const std::uint8_t> buf) override;
  Result<FileStat> stat() const override;
  SysResult ioctl(SyscallContext& ctx, std::uint64_t request, std::uint64_t arg) override;
  unsigned poll(WaitQueue** wq) override;
  Pipe& pipe() const { return *pipe_; }

 private:
  std::shared_ptr<Pipe> pipe_;
  bool write_end_;
  bool both_;
};

// pipe2's pair: [0] the read end, [1] the write end. ino: the pipefs inode number.
std::pair<OpenFileRef, OpenFileRef> make_pipe(std::uint64_t ino, int flags);

// fifo_open, as an open(2) of a FIFO by name: the end for `flags` (the one this process is
// waiting with when its open is retried). A non-blocking writer with no reader: ENXIO.
// A FIFO nobody has open starts empty.
Result<OpenFileRef> fifo_open(SyscallContext& ctx, const std::shared_ptr<Pipe>& pipe, int flags);
// Then: a blocking reader waits for a writer to open, a writer for a reader (O_RDWR and a
// non-blocking reader never wait); ok once the open may complete, else blocks keeping `end`.
SysResult fifo_wait(SyscallContext& ctx, const OpenFileRef& end);

}  // namespace mmemu
