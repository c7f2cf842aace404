// Path lookup: the emulated /proc and /dev names and the read-only host file system.
#include "emu/fs/path_lookup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <vector>

#include <fmt/format.h>

#include "emu/fs/created_files.hpp"
#include "emu/fs/dev_file.hpp"
#include "emu/fs/host_file.hpp"
#include "emu/fs/pipe.hpp"
#include "emu/fs/proc_pagemap.hpp"
#include "emu/fs/proc_system.hpp"
#include "emu/fs/procfs.hpp"
#include "emu/fs/shmem_file.hpp"
#include "emu/kernel/cred.hpp"
#include "emu/syscalls/abi.hpp"
#include "vma/file.hpp"
#include "vma/shmem.hpp"

namespace mmemu {

namespace {

constexpr int kMaxLinkDepth = 8;

std::vector<std::string> split(const std::string& norm) {
  std::vector<std::string> out;
  std::size_t i = 1;
  while (i <= norm.size()) {
    std::size_t j = norm.find('/', i);
    if (j == std::string::npos) j = norm.size();
    if (j > i) out.push_back(norm.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::optional<int> parse_int(const std::string& s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0 || (s.size() > 1 && s[0] == '0'))
    return std::nullopt;
  return v;
}

bool write_access(int flags) {
  return (flags & O_ACCMODE) != O_RDONLY;
}

// What a name in the emulated part of the tree is.
struct Node {
  enum Kind { Host, HostPseudo, Dir, Gen, Link, Dev, Shmem, Special, Missing } kind = Host;
  std::string name;                // canonical name (/proc/self/fd/N shows it)
  std::string host;                // Host/HostPseudo: the host path
  std::string target;              // Link: what readlink shows
  std::string follow;              // Link: the absolute path it leads to ("" for fd links)
  OpenFileRef fd_file;             // Link of /proc/PID/fd/N: the open file
  std::vector<DirEntry> entries;   // Dir
  GeneratedFile::Generator gen;    // Gen
  DirFile::Lister relist;          // Dir: entries listed again at each rewind
  std::uint32_t mode = 0444;       // Gen/Dir permission bits
  std::uint32_t uid = 0, gid = 0;  // Gen/Dir owner (a /proc/PID file: the process's ids)
  std::int64_t time_s = 0;         // a /proc/PID name's times: when the process started
  std::uint64_t ino = 0;
  CharDevKind dev = CharDevKind::Null;
  ShmemInodeRef shmem;  // Shmem: a file the guest created
  // Special: a FIFO or socket name the guest created; Link: a symbolic link it created.
  SpecialNodeRef special;
  int err = ENOENT;  // Missing

  // Gen: opens a file other than the generated text (pagemap, mem) or adds to it (maps'
  // ioctl); called after the permission checks with the open flags.
  std::function<Result<OpenFileRef>(SyscallContext& ctx, int flags, const FileStat& st)> open_fn;
};

Node missing(int e = ENOENT) {
  Node n;
  n.kind = Node::Missing;
  n.err = e;
  return n;
}

Node link_node(std::string name, std::string target, std::string follow) {
  Node n;
  n.kind = Node::Link;
  n.name = std::move(name);
  n.target = std::move(target);
  n.follow = std::move(follow);
  return n;
}

Node dir_node(std::string name, std::vector<std::string> names, std::uint32_t mode,
              std::uint8_t type, std::uint64_t ino) {
  Node n;
  n.kind = Node::Dir;
  n.name = std::move(name);
  n.mode = mode;
  n.ino = ino;
  n.entries.push_back({ino, DT_DIR, "."});
  n.entries.push_back({ino + 1, DT_DIR, ".."});
  std::uint64_t i = ino + 2;
  for (auto& s : names)
    n.entries.push_back({i++, type, std::move(s)});
  return n;
}

Process* guest_proc(SyscallContext& ctx, int pid) {
  if (pid == ctx.proc.pid) return &ctx.proc;
  return ctx.kernel.find(pid);
}

Node pid_node_at(SyscallContext& ctx, Process& p, const std::vector<std::string>& c, std::size_t at,
                 const std::string& base, std::uint64_t ino0);

// /proc/PID/<rest> of a guest process.
Node pid_node(SyscallContext& ctx, Process& p, const std::vector<std::string>& c, std::size_t at) {
  const std::string base = fmt::format("/proc/{}", p.pid);
  const auto ino0 = static_cast<std::uint64_t>(p.pid) << 12;
  Node n = pid_node_at(ctx, p, c, at, base, ino0);
  // Linux gives /proc/PID's files the owner of the process (a dumpable one).
  n.uid = p.cred.euid;
  n.gid = p.cred.egid;
  timespec real{}, boot{};
  ::clock_gettime(CLOCK_REALTIME, &real);
  ::clock_gettime(CLOCK_BOOTTIME, &boot);
  const std::int64_t boot_ns = boot.tv_sec * 1000000000LL + boot.tv_nsec;
  n.time_s =
      real.tv_sec - (boot_ns - static_cast<std::int64_t>(p.start_boottime_ns)) / 1000000000LL;
  return n;
}

// maps: the generated text, plus the PROCMAP_QUERY ioctl on the mm of the open.
void add_procmap_query(Node& n, const std::weak_ptr<AddressSpace>& as) {
  n.open_fn = [as, gen = n.gen, name = n.name](SyscallContext&, int flags, const FileStat& st) {
    auto f = std::make_shared<GeneratedFile>(flags, name, gen, st);
    // proc_maps_open takes the mm at open time; a later exec does not change it.
    std::weak_ptr<AddressSpace> mm_at_open = as;
    f->set_ioctl([mm_at_open](SyscallContext& c, std::uint64_t req, std::uint64_t arg) {
      return procmap_ioctl(c, mm_at_open, req, arg);
    });
    return Result<OpenFileRef>(OpenFileRef(std::move(f)));
  };
}

// pagemap (0400) and mem (0600): the mm and the opener's credentials are taken at open
// (proc_mem_open, file_ns_capable on f_cred). false: the process has no such file.
bool pagemap_mem_node(SyscallContext& ctx, Process& p, const std::string& e, Node& n) {
  const std::weak_ptr<AddressSpace> as = p.as;
  Kernel* k = &ctx.kernel;
  const int pid = p.pid;
  const bool pagemap = e == "pagemap";
  n.mode = pagemap ? 0400 : 0600;
  n.gen = [] { return std::optional<std::string>(); };
  n.open_fn = [k, pid, as, pagemap, name = n.name](SyscallContext& c, int flags,
                                                   const FileStat& st) -> Result<OpenFileRef> {
    Process* target = pid == c.proc.pid ? &c.proc : k->find(pid);
    if (target)
      if (auto ok = proc_mem_permitted(c.proc, *target); !ok) return std::unexpected(ok.error());
    if (pagemap) {
      auto f = std::make_shared<PagemapFile>(flags, as, capable(c.proc.cred, CAP_SYS_ADMIN), st);
      f->set_path(name);
      return OpenFileRef(std::move(f));
    }
    auto f = std::make_shared<ProcMemFile>(flags, as, st);
    f->set_path(name);
    return OpenFileRef(std::move(f));
  };
  return true;
}

Node pid_node_at(SyscallContext& ctx, Process& p, const std::vector<std::string>& c, std::size_t at,
                 const std::string& base, std::uint64_t ino0) {
  if (at == c.size()) {
    static const std::pair<const char*, std::uint8_t> kEntries[] = {
        {"task", DT_DIR},   {"fd", DT_DIR},        {"environ", DT_REG},      {"limits", DT_REG},
        {"status", DT_REG}, {"stat", DT_REG},      {"statm", DT_REG},        {"maps", DT_REG},
        {"mounts", DT_REG}, {"smaps", DT_REG},     {"smaps_rollup", DT_REG}, {"cmdline", DT_REG},
        {"comm", DT_REG},   {"cwd", DT_LNK},       {"root", DT_LNK},         {"exe", DT_LNK},
        {"cgroup", DT_REG}, {"mountinfo", DT_REG}, {"loginuid", DT_REG},     {"sessionid", DT_REG}};
    Node n = dir_node(base, {}, 0555, DT_REG, ino0);
    std::uint64_t i = ino0 + 2;
    for (const auto& [name, type] : kEntries)
      n.entries.push_back({i++, type, name});
    for (const char* name : {"pagemap", "mem"})
      n.entries.push_back({i++, DT_REG, name});
    return n;
  }
  const std::string& e = c[at];
  const bool last = at + 1 == c.size();
  if (e == "task") {
    if (last) return dir_node(base + "/task", {std::to_string(p.pid)}, 0555, DT_DIR, ino0 + 64);
    if (c[at + 1] != std::to_string(p.pid)) return missing();
    return pid_node_at(ctx, p, c, at + 2, base + "/task/" + c[at + 1], ino0);
  }
  if (e == "fd") {
    if (!p.fds) return missing();
    if (last) {
      // Listed when read, so the descriptor reading it is in the list, as on Linux.
      // The process is looked up by pid each time: the directory may outlive it.
      Kernel* k = &ctx.kernel;
      const int pid = p.pid;
      const std::string name = base + "/fd";
      auto list = [k, pid, name, ino0]() {
        Process* q = k->find(pid);
        std::vector<std::string> fds;
        if (q && q->fds)
          for (int fd : q->fds->open_fds())
            fds.push_back(std::to_string(fd));
        return dir_node(name, std::move(fds), 0500, DT_LNK, ino0 + 128).entries;
      };
      Node n = dir_node(name, {}, 0500, DT_LNK, ino0 + 128);
      n.relist = list;
      return n;
    }
    if (at + 2 != c.size()) return missing(ENOTDIR);
    auto fd = parse_int(c[at + 1]);
    OpenFileRef f = fd ? p.fds->get(*fd) : nullptr;
    if (!f) return missing();
    Node n = link_node(base + "/fd/" + c[at + 1], f->path(), "");
    n.fd_file = std::move(f);
    return n;
  }
  if (!last) return missing(ENOTDIR);
  if (e == "exe") {
    if (!p.has_mm()) return missing();  // a zombie has no executable
    return link_node(base + "/exe", p.as->exe_path, p.as->exe_path);
  }
  if (e == "cwd" || e == "root") {
    if (p.state == ProcState::Zombie) return missing();  // its fs_struct is gone
    const std::string target = e == "cwd" ? p.fs.cwd : std::string("/");
    return link_node(base + "/" + e, target, target);
  }
  Node n;
  n.kind = Node::Gen;
  n.name = base + "/" + e;
  n.ino = ino0 + 256 + static_cast<std::uint64_t>(e.size() * 31 + static_cast<unsigned>(e[0]));
  const std::weak_ptr<AddressSpace> as = p.as;
  Kernel* k = &ctx.kernel;
  const int pid = p.pid;
  if (e == "maps") {
    n.gen = [as] { return proc_pid_text(as.lock(), ProcText::Maps); };
    add_procmap_query(n, as);
  } else if (e == "pagemap" || e == "mem") {
    if (!pagemap_mem_node(ctx, p, e, n)) return missing();
  } else if (e == "smaps") {
    n.gen = [as] { return proc_pid_text(as.lock(), ProcText::Smaps); };
  } else if (e == "smaps_rollup") {
    n.gen = [as] { return proc_pid_text(as.lock(), ProcText::SmapsRollup); };
  } else if (e == "cmdline") {
    n.gen = [as] { return proc_pid_text(as.lock(), ProcText::Cmdline); };
  } else if (e == "environ") {
    n.gen = [as] { return proc_pid_text(as.lock(), ProcText::Environ); };
    n.mode = 0400;
  } else if (e == "mounts") {
    n.gen = [] { return std::optional<std::string>(proc_mounts_text()); };
  } else if (e == "mountinfo") {
    n.gen = [] { return std::optional<std::string>(proc_mountinfo_text()); };
  } else if (e == "cgroup") {
    // The root of the unified hierarchy: mmemu has no control groups.
    n.gen = [] { return std::optional<std::string>("0::/\n"); };
  } else if (e == "loginuid" || e == "sessionid") {
    // No login session was ever set (AUDIT_UID_UNSET, AUDIT_SID_UNSET): getlogin gives ENXIO.
    n.gen = [] { return std::optional<std::string>("4294967295"); };
    if (e == "loginuid") n.mode = 0644;
  } else if (e == "comm" || e == "status" || e == "stat" || e == "statm" || e == "limits") {
    const ProcText what = e == "comm"     ? ProcText::Comm
                          : e == "status" ? ProcText::Status
                          : e == "stat"   ? ProcText::Stat
                          : e == "limits" ? ProcText::Limits
                                          : ProcText::Statm;
    n.gen = [k, pid, what]() -> std::optional<std::string> {
      Process* q = k->find(pid);
      if (!q) return std::nullopt;
      return proc_process_text(*q, what);
    };
    if (e == "comm") n.mode = 0644;
  } else {
    return missing();
  }
  return n;
}

// /proc itself: the host's names that are not pids (meminfo, sys, self, ...), then the
// guest processes (zombies included), as Linux lists the root of procfs. Listed again when
// read from the start, so new processes show up.
Node proc_root_node(SyscallContext& ctx) {
  Kernel* k = &ctx.kernel;
  auto list = [k]() {
    std::vector<DirEntry> out{{1, DT_DIR, "."}, {2, DT_DIR, ".."}};
    if (auto host = DirFile::list_host("/proc"))
      for (DirEntry& e : *host)
        if (e.name != "." && e.name != ".." && !parse_int(e.name)) out.push_back(std::move(e));
    for (Process* p : k->processes())
      out.push_back({static_cast<std::uint64_t>(p->pid) << 12, DT_DIR, std::to_string(p->pid)});
    return out;
  };
  Node n;
  n.kind = Node::Dir;
  n.name = "/proc";
  n.mode = 0555;
  n.ino = 1;
  n.entries = list();
  n.relist = list;
  return n;
}

// The system-wide files that describe the emulated machine (emu/fs/proc_system.hpp);
// nullopt for the names the host answers.
std::optional<Node> proc_system_node(SyscallContext& ctx, const std::string& name) {
  Kernel* k = &ctx.kernel;
  Node n;
  n.kind = Node::Gen;
  n.name = "/proc/" + name;
  n.ino = 0xf000 + name.size() * 31 + static_cast<unsigned char>(name[0]);
  if (name == "meminfo") {
    n.gen = [k] { return std::optional<std::string>(proc_meminfo_text(system_snapshot(*k))); };
  } else if (name == "stat") {
    n.gen = [k] { return std::optional<std::string>(proc_stat_text(system_snapshot(*k))); };
  } else if (name == "loadavg") {
    n.gen = [k] { return std::optional<std::string>(proc_loadavg_text(system_snapshot(*k))); };
  } else if (name == "uptime") {
    n.gen = [k] { return std::optional<std::string>(proc_uptime_text(system_snapshot(*k))); };
  } else if (name == "cpuinfo") {
    // What a process reads depends on its own architecture.
    const Arch arch = ctx.proc.arch;
    n.gen = [arch] { return std::optional<std::string>(proc_cpuinfo_text(arch)); };
  } else {
    return std::nullopt;
  }
  return n;
}

Node lookup(SyscallContext& ctx, const std::string& norm);

// A path the host does not have that goes through a symbolic link the guest created (to a
// directory): looked up again from the link's target, up to kMaxLinkDepth links deep.
std::optional<Node> through_created_link(SyscallContext& ctx, const std::string& norm,
                                         const std::vector<std::string>& c) {
  thread_local int depth = 0;
  struct ::stat hst;
  if (c.size() < 2 || !ctx.kernel.created_files().has_specials() ||
      ::lstat(norm.c_str(), &hst) == 0)
    return std::nullopt;
  std::string prefix;
  for (std::size_t i = 0; i + 1 < c.size(); ++i) {
    prefix += "/" + c[i];
    const std::string key = CreatedFiles::key_of(prefix);
    auto sp = ctx.kernel.created_files().find_special(key);
    if (!sp || (sp->st.mode & S_IFMT) != S_IFLNK) continue;
    if (depth >= kMaxLinkDepth) return missing(ELOOP);
    std::string rest =
        sp->target.starts_with("/") ? sp->target : parent_dir(key) + "/" + sp->target;
    for (std::size_t j = i + 1; j < c.size(); ++j)
      rest += "/" + c[j];
    ++depth;
    Node n = lookup(ctx, normalize_path(rest));
    --depth;
    return n;
  }
  return std::nullopt;
}

// The emulated name space; Host for everything it does not cover.
Node lookup(SyscallContext& ctx, const std::string& norm) {
  const std::vector<std::string> c = split(norm);
  if (!c.empty() && c[0] == "proc") {
    if (c.size() == 1) return proc_root_node(ctx);
    const std::string pid = std::to_string(ctx.proc.pid);
    if (c[1] == "self" || c[1] == "thread-self") {
      const bool thread = c[1] == "thread-self";
      std::string target = thread ? pid + "/task/" + pid : pid;
      if (c.size() == 2) return link_node("/proc/" + c[1], target, "/proc/" + target);
      std::string rest;
      for (std::size_t i = 2; i < c.size(); ++i)
        rest += "/" + c[i];
      return lookup(ctx, "/proc/" + target + rest);
    }
    if (auto n = parse_int(c[1])) {
      Process* p = guest_proc(ctx, *n);
      if (!p) return missing();
      return pid_node(ctx, *p, c, 2);
    }
    if (c[1] == "mounts") {
      if (c.size() > 2) return missing(ENOTDIR);
      return link_node(norm, "self/mounts", "/proc/self/mounts");
    }
    if (c.size() == 2)
      if (auto g = proc_system_node(ctx, c[1])) return std::move(*g);
    Node n;
    n.kind = Node::HostPseudo;
    n.host = norm;
    return n;
  }
  if (norm == "/sys/devices/system/cpu/online" || norm == "/sys/devices/system/cpu/possible" ||
      norm == "/sys/devices/system/cpu/present") {
    // One CPU, as sched_getaffinity says.
    Node n;
    n.kind = Node::Gen;
    n.name = norm;
    n.ino = 0x5ec0 + norm.size();
    n.gen = [] { return std::optional<std::string>("0\n"); };
    return n;
  }
  if (!c.empty() && c[0] == "sys") {
    Node n;
    n.kind = Node::HostPseudo;
    n.host = norm;
    return n;
  }
  if (c.size() >= 2 && c[0] == "dev") {
    static const std::pair<const char*, CharDevKind> kDevs[] = {{"null", CharDevKind::Null},
                                                                {"zero", CharDevKind::Zero},
                                                                {"full", CharDevKind::Full},
                                                                {"random", CharDevKind::Random},
                                                                {"urandom", CharDevKind::Urandom}};
    if (c.size() == 2) {
      for (const auto& [name, kind] : kDevs)
        if (c[1] == name) {
          Node n;
          n.kind = Node::Dev;
          n.dev = kind;
          n.name = norm;
          return n;
        }
      if (c[1] == "stdin") return link_node(norm, "/proc/self/fd/0", "/proc/self/fd/0");
      if (c[1] == "stdout") return link_node(norm, "/proc/self/fd/1", "/proc/self/fd/1");
      if (c[1] == "stderr") return link_node(norm, "/proc/self/fd/2", "/proc/self/fd/2");
      if (c[1] == "fd") return link_node(norm, "/proc/self/fd", "/proc/self/fd");
    }
    if (c[1] == "fd") {
      std::string rest;
      for (std::size_t i = 2; i < c.size(); ++i)
        rest += "/" + c[i];
      return lookup(ctx, "/proc/self/fd" + rest);
    }
  }
  Node n;
  if (!ctx.kernel.created_files().empty()) {
    const std::string key = CreatedFiles::key_of(norm);
    if (auto inode = ctx.kernel.created_files().find(key)) {
      n.kind = Node::Shmem;
      n.name = inode->path;
      n.shmem = std::move(inode);
      return n;
    }
    if (auto sp = ctx.kernel.created_files().find_special(key)) {
      if ((sp->st.mode & S_IFMT) == S_IFLNK) {
        // A relative target is looked up from the link's directory.
        const std::string follow =
            sp->target.starts_with("/") ? sp->target : parent_dir(key) + "/" + sp->target;
        n = link_node(key, sp->target, follow);
      } else {
        n.kind = Node::Special;
        n.name = key;
      }
      n.special = std::move(sp);
      return n;
    }
    if (auto through = through_created_link(ctx, norm, c)) return std::move(*through);
  }
  n.host = norm;
  return n;
}

void owner_and_times(const Node& n, FileStat& s) {
  s.uid = n.uid;
  s.gid = n.gid;
  s.atime_sec = s.mtime_sec = s.ctime_sec = n.time_s;
}

// stat or lstat of a host path.
Result<struct ::stat> host_stat(const std::string& path, bool follow) {
  struct ::stat st;
  if ((follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st)) != 0) return fail(errno);
  return st;
}

FileStat dir_stat(const Node& n) {
  FileStat s = proc_file_stat(n.mode, n.ino);
  owner_and_times(n, s);
  s.mode = S_IFDIR | n.mode;
  s.nlink = 2;
  return s;
}

FileStat gen_stat(const Node& n) {
  FileStat s = proc_file_stat(n.mode, n.ino);
  owner_and_times(n, s);
  return s;
}

FileStat link_stat(const Node& n) {
  if (n.special) return n.special->st;
  FileStat s = proc_file_stat(0777, n.ino);
  owner_and_times(n, s);
  s.mode = S_IFLNK | 0777;
  return s;
}

// Opens a shmem inode: a memfd again through /proc/PID/fd/N, or a file the guest created.
// The guest owns what it created, so the owner's permission bits apply (root passes).
Result<OpenFileRef> open_shmem(SyscallContext& ctx, const ShmemInodeRef& inode, int flags) {
  const FileStat st = inode->stat();
  if (flags & O_PATH) return OpenFileRef(std::make_shared<PathFile>(flags, st, inode->path));
  if (flags & kO_DIRECTORY) return fail(ENOTDIR);
  const bool wr = write_access(flags);
  if (ctx.proc.cred.euid != 0) {
    const std::uint32_t need = (wr ? 2U : 0U) | ((flags & O_ACCMODE) != O_WRONLY ? 4U : 0U);
    if (((st.mode >> 6) & need) != need) return fail(EACCES);
  }
  if ((flags & O_TRUNC) && wr)
    if (auto r = shmem_setattr_size(*inode->file, 0); !r) return std::unexpected(r.error());
  return OpenFileRef(std::make_shared<ShmemFile>(
      (flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)) | kO_LARGEFILE, inode));
}

// Opens a FIFO (or socket name) the guest created: the FIFO's pipe, joined as fifo_open
// does (the caller waits for the other side with fifo_wait); a socket name is ENXIO.
Result<OpenFileRef> open_special(SyscallContext& ctx, const SpecialNode& sp,
                                 const std::string& name, int flags, bool trailing_slash) {
  if (trailing_slash) return fail(ENOTDIR);
  if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) return fail(EEXIST);
  if (flags & O_PATH) return OpenFileRef(std::make_shared<PathFile>(flags, sp.st, name));
  if (flags & kO_DIRECTORY) return fail(ENOTDIR);
  if ((flags & kO_TMPFILE) == kO_TMPFILE) return fail(ENOTDIR);
  if (ctx.proc.cred.euid != 0) {
    const bool wr = write_access(flags);
    const std::uint32_t need = (wr ? 2U : 0U) | ((flags & O_ACCMODE) != O_WRONLY ? 4U : 0U);
    const std::uint32_t bits = ctx.proc.cred.euid == sp.st.uid   ? sp.st.mode >> 6
                               : ctx.proc.cred.egid == sp.st.gid ? sp.st.mode >> 3
                                                                 : sp.st.mode;
    if ((bits & need) != need) return fail(EACCES);
  }
  if (!sp.fifo) return fail(ENXIO);
  return fifo_open(
      ctx, sp.fifo,
      (flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC | kO_LARGEFILE)) | kO_LARGEFILE);
}

// A new regular file in memory at `host` (a name in an existing host directory whose device
// is `dev`), or an unnamed one (O_TMPFILE: `name_it` false).
Result<OpenFileRef> create_file(SyscallContext& ctx, const std::string& host, int flags,
                                std::uint32_t mode, std::uint64_t dev, bool name_it) {
  const std::uint32_t perm = mode & ~ctx.proc.fs.umask & 07777;
  const std::string key = name_it ? CreatedFiles::key_of(host) : host;
  // /proc/PID/maps shows the device as major:minor of the directory's file system.
  File* file = File::create_shmem_file(ctx.kernel.machine(), key, kSealSeal,
                                       (major(dev) << 8) | (minor(dev) & 0xff));
  FileStat st =
      new_shmem_stat(S_IFREG | perm, ctx.proc.cred.euid, ctx.proc.cred.egid, name_it ? 1 : 0);
  st.dev = dev;
  auto inode = std::make_shared<ShmemInode>(file, st, key);
  if (name_it) {
    ctx.kernel.created_files().add(key, inode);
  } else {
    inode->renamed(fmt::format("{}/#{}", host == "/" ? "" : host, inode->st.ino));
    inode->unlinked();
  }
  return OpenFileRef(std::make_shared<ShmemFile>(
      (flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC | kO_TMPFILE)) | kO_LARGEFILE,
      std::move(inode)));
}

// Opens a descriptor's file again through /proc/PID/fd/N: a new open file description of
// the same object where mmemu can make one, else the same description.
Result<OpenFileRef> reopen(SyscallContext& ctx, const OpenFileRef& f, int flags, int depth) {
  if (auto* pe = dynamic_cast<PipeEnd*>(f.get())) {
    (void)pe;
    // A FIFO opened by name: the requested direction on the same pipe.
    return OpenFileRef(f);
  }
  if (auto* hs = dynamic_cast<HostStdio*>(f.get()))
    return OpenFileRef(std::make_shared<HostStdio>(hs->host_fd(), flags & (O_ACCMODE | O_APPEND)));
  if (auto* cd = dynamic_cast<CharDev*>(f.get()))
    return OpenFileRef(std::make_shared<CharDev>(cd->dev_kind(), flags | kO_LARGEFILE));
  if (auto* mf = dynamic_cast<ShmemFile*>(f.get())) return open_shmem(ctx, mf->inode(), flags);
  const std::string k(f->kind());
  if (k == "file" || k == "dir" || k == "proc") {
    (void)depth;
    return open_path(ctx, f->path(), flags);
  }
  return OpenFileRef(f);
}

// Reads a host pseudo-file (/proc/meminfo, /sys/...) whole.
std::optional<std::string> read_host_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Result<OpenFileRef> open_host(SyscallContext& ctx, const std::string& host, int flags,
                              std::uint32_t mode, bool pseudo, bool trailing_slash) {
  const bool nofollow = (flags & kO_NOFOLLOW) != 0;
  const bool opath = (flags & O_PATH) != 0;
  struct ::stat st;
  if ((nofollow ? ::lstat(host.c_str(), &st) : ::stat(host.c_str(), &st)) != 0) {
    const int e = errno;
    if (e == ENOENT && (flags & O_CREAT) && !trailing_slash && !pseudo) {
      // The last component is missing: it is created in memory if the guest may write the
      // directory (a read-only host mount still answers EROFS).
      const std::string parent = parent_dir(host);
      struct ::stat pst;
      if (::stat(parent.c_str(), &pst) == 0 && S_ISDIR(pst.st_mode)) {
        if (::access(parent.c_str(), W_OK | X_OK) != 0) return fail(errno);
        return create_file(ctx, host, flags, mode, pst.st_dev, true);
      }
    }
    return fail(e);
  }
  if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) return fail(EEXIST);
  const FileStat fst = file_stat_from_host(st);
  const int kept = flags | kO_LARGEFILE;
  if (S_ISLNK(st.st_mode) && !opath) return fail(ELOOP);
  if (opath) return OpenFileRef(std::make_shared<PathFile>(flags, fst, host));
  if (S_ISDIR(st.st_mode)) {
    if ((flags & kO_TMPFILE) == kO_TMPFILE) {
      if (pseudo) return fail(EOPNOTSUPP);
      if (::access(host.c_str(), W_OK | X_OK) != 0) return fail(errno);
      return create_file(ctx, normalize_path(host), flags, mode, st.st_dev, false);
    }
    if ((flags & O_CREAT) || write_access(flags)) return fail(EISDIR);
    auto entries = DirFile::list_host(host);
    if (!entries) return std::unexpected(entries.error());
    char resolved[PATH_MAX];
    if (!ctx.kernel.created_files().empty() && ::realpath(host.c_str(), resolved))
      for (auto& e : ctx.kernel.created_files().in_dir(resolved))
        entries->push_back({e.ino, e.type, std::move(e.name)});
    return OpenFileRef(std::make_shared<DirFile>(kept, std::move(*entries), fst, host));
  }
  if (flags & kO_DIRECTORY) return fail(ENOTDIR);
  if (!S_ISREG(st.st_mode)) return fail(EACCES);  // host devices, FIFOs, sockets
  if (write_access(flags) || (flags & O_TRUNC)) return fail(EROFS);
  if (::access(host.c_str(), R_OK) != 0) return fail(errno);
  if (pseudo) {
    FileStat s = fst;
    return OpenFileRef(std::make_shared<GeneratedFile>(
        kept, host, [host] { return read_host_text(host); }, s));
  }
  auto file = ctx.kernel.open_host_file(host);
  if (!file) return std::unexpected(file.error());
  std::string name = (*file)->name();
  return OpenFileRef(std::make_shared<HostFile>(kept, *file, fst, std::move(name)));
}

Result<OpenFileRef> open_node(SyscallContext& ctx, const std::string& abs, int flags,
                              std::uint32_t mode, int depth) {
  if (depth > kMaxLinkDepth) return fail(ELOOP);
  const std::string norm = normalize_path(abs);
  const bool trailing_slash = abs.size() > 1 && abs.back() == '/';
  Node n = lookup(ctx, norm);
  const bool opath = (flags & O_PATH) != 0;
  switch (n.kind) {
    case Node::Missing:
      return fail(n.err);
    case Node::Host:
    case Node::HostPseudo:
      return open_host(ctx, trailing_slash ? n.host + "/" : n.host, flags, mode,
                       n.kind == Node::HostPseudo, trailing_slash);
    case Node::Shmem:
      if (trailing_slash) return fail(ENOTDIR);
      if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) return fail(EEXIST);
      if ((flags & kO_TMPFILE) == kO_TMPFILE) return fail(ENOTDIR);
      return open_shmem(ctx, n.shmem, flags);
    case Node::Special:
      return open_special(ctx, *n.special, n.name, flags, trailing_slash);
    case Node::Link:
      if (flags & kO_NOFOLLOW) {
        if (!opath) return fail(ELOOP);
        return OpenFileRef(std::make_shared<PathFile>(flags, link_stat(n), n.name));
      }
      if (n.fd_file) {
        if (opath)
          return OpenFileRef(std::make_shared<PathFile>(flags, *n.fd_file->stat(), n.name));
        return reopen(ctx, n.fd_file, flags, depth);
      }
      return open_node(ctx, n.follow, flags, mode, depth + 1);
    case Node::Dir:
      if (opath) return OpenFileRef(std::make_shared<PathFile>(flags, dir_stat(n), n.name));
      if ((flags & O_CREAT) || write_access(flags)) return fail(EISDIR);
      return OpenFileRef(std::make_shared<DirFile>(flags | kO_LARGEFILE, std::move(n.entries),
                                                   dir_stat(n), n.name, std::move(n.relist)));
    case Node::Gen: {
      if (trailing_slash || (flags & kO_DIRECTORY)) return fail(ENOTDIR);
      if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) return fail(EEXIST);
      FileStat st = gen_stat(n);
      if (opath) return OpenFileRef(std::make_shared<PathFile>(flags, st, n.name));
      // Only the owner's write bit or root's override lets a write open through.
      if (write_access(flags) && !(n.mode & 0200) && ctx.proc.cred.euid != 0) return fail(EACCES);
      if (n.open_fn) return n.open_fn(ctx, flags | kO_LARGEFILE, st);
      return OpenFileRef(
          std::make_shared<GeneratedFile>(flags | kO_LARGEFILE, n.name, std::move(n.gen), st));
    }
    case Node::Dev: {
      if (trailing_slash || (flags & kO_DIRECTORY)) return fail(ENOTDIR);
      if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) return fail(EEXIST);
      auto dev = std::make_shared<CharDev>(n.dev, flags | kO_LARGEFILE);
      if (opath) return OpenFileRef(std::make_shared<PathFile>(flags, *dev->stat(), n.name));
      return OpenFileRef(std::move(dev));
    }
  }
  return fail(ENOENT);
}

Result<FileStat> stat_node(SyscallContext& ctx, const std::string& abs, bool follow, int depth) {
  if (depth > kMaxLinkDepth) return fail(ELOOP);
  const std::string norm = normalize_path(abs);
  const bool trailing_slash = abs.size() > 1 && abs.back() == '/';
  Node n = lookup(ctx, norm);
  switch (n.kind) {
    case Node::Missing:
      return fail(n.err);
    case Node::Host:
    case Node::HostPseudo: {
      auto st = host_stat(trailing_slash ? n.host + "/" : n.host, follow);
      if (!st) return std::unexpected(st.error());
      return file_stat_from_host(*st);
    }
    case Node::Link:
      if (!follow && !trailing_slash) return link_stat(n);
      if (n.fd_file) return n.fd_file->stat();
      return stat_node(ctx, n.follow, true, depth + 1);
    case Node::Dir:
      return dir_stat(n);
    case Node::Gen:
      if (trailing_slash) return fail(ENOTDIR);
      return gen_stat(n);
    case Node::Dev:
      if (trailing_slash) return fail(ENOTDIR);
      return CharDev(n.dev, O_RDONLY).stat();
    case Node::Shmem:
      if (trailing_slash) return fail(ENOTDIR);
      return n.shmem->stat();
    case Node::Special:
      if (trailing_slash) return fail(ENOTDIR);
      return n.special->st;
  }
  return fail(ENOENT);
}

}  // namespace

Result<std::string> read_path(const SyscallContext& ctx, vaddr_t p) {
  return ctx.read_string(p, kPathMax - 1);
}

Result<std::string> resolve_at(const SyscallContext& ctx, int dirfd, const std::string& path,
                               bool allow_empty) {
  if (path.empty() && !allow_empty) return fail(ENOENT);
  if (!path.empty() && path[0] == '/') return path;
  std::string base;
  if (dirfd == kAtFdcwd) {
    base = ctx.proc.fs.cwd;
  } else {
    OpenFileRef f = ctx.proc.fds ? ctx.proc.fds->get(dirfd) : nullptr;
    if (!f) return fail(EBADF);
    if (path.empty()) return std::string();  // AT_EMPTY_PATH: the descriptor itself
    const auto* pf = dynamic_cast<const PathFile*>(f.get());
    if (f->kind() != "dir" && !(pf && pf->is_dir())) return fail(ENOTDIR);
    base = f->path();
  }
  if (path.empty()) return std::string();
  if (base.empty() || base.back() != '/') base += '/';
  return base + path;
}

std::string parent_dir(const std::string& abs) {
  const std::size_t slash = abs.find_last_of('/');
  if (slash == 0 || slash == std::string::npos) return std::string(1, '/');
  return std::string(abs, 0, slash);
}

std::string normalize_path(const std::string& abs) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i <= abs.size()) {
    std::size_t j = abs.find('/', i);
    if (j == std::string::npos) j = abs.size();
    std::string c = abs.substr(i, j - i);
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!c.empty() && c != ".") {
      parts.push_back(std::move(c));
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p : parts)
    out += "/" + p;
  return out.empty() ? "/" : out;
}

Result<OpenFileRef> open_path(SyscallContext& ctx, const std::string& abs, int flags,
                              std::uint32_t mode) {
  return open_node(ctx, abs, flags, mode, 0);
}

Result<FileStat> stat_path(SyscallContext& ctx, const std::string& abs, bool follow) {
  return stat_node(ctx, abs, follow, 0);
}

Result<std::string> readlink_path(SyscallContext& ctx, const std::string& abs) {
  Node n = lookup(ctx, normalize_path(abs));
  switch (n.kind) {
    case Node::Missing:
      return fail(n.err);
    case Node::Host:
    case Node::HostPseudo: {
      std::vector<char> buf(kPathMax);
      const ssize_t len = ::readlink(n.host.c_str(), buf.data(), buf.size());
      if (len < 0) return fail(errno);
      return std::string(buf.data(), static_cast<std::size_t>(len));
    }
    case Node::Link:
      return n.target;
    default: {
      // An existing emulated name that is not a link.
      return fail(EINVAL);
    }
  }
}

Result<void> access_path(SyscallContext& ctx, const std::string& abs, int mode, bool follow) {
  Node n = lookup(ctx, normalize_path(abs));
  if (n.kind == Node::Host || n.kind == Node::HostPseudo) {
    auto st = host_stat(n.host, follow);
    if (!st) return std::unexpected(st.error());
    // A read-only mount: writing regular files, directories and links is EROFS.
    const mode_t m = st->st_mode;
    if ((mode & W_OK) && (S_ISREG(m) || S_ISDIR(m) || S_ISLNK(m))) return fail(EROFS);
    if (::faccessat(AT_FDCWD, n.host.c_str(), mode, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0)
      return fail(errno);
    return {};
  }
  auto st = stat_path(ctx, abs, follow);
  if (!st) return std::unexpected(st.error());
  if (ctx.proc.cred.euid == 0) {
    // root: everything but executing something without any x bit.
    if ((mode & X_OK) && !S_ISDIR(st->mode) && !(st->mode & 0111)) return fail(EACCES);
    return {};
  }
  const std::uint32_t bits = st->mode & 07;  // "other" bits: the guest does not own /proc
  const std::uint32_t owner = (st->mode >> 6) & 07;
  const std::uint32_t allowed = bits | owner;
  if ((static_cast<std::uint32_t>(mode) & ~allowed) & 07) return fail(EACCES);
  return {};
}

namespace {

constexpr std::int64_t kProcSuperMagic = 0x9fa0, kTmpfsMagic = 0x01021994,
                       kPipefsMagic = 0x50495045;
constexpr std::int64_t kStRdonly = 0x1, kStValid = 0x20, kStRelatime = 0x1000;

// A pseudo file system without blocks: procfs (device 0:21), pipefs, an unnamed tmpfs.
StatFs pseudo_statfs(std::int64_t type, std::int32_t dev_minor) {
  StatFs s;
  s.type = type;
  s.bsize = s.frsize = 4096;
  s.namelen = 255;
  s.fsid[0] = dev_minor;
  s.flags = kStValid | kStRelatime;
  return s;
}

// A host file system's numbers as struct statfs carries them to the guest.
StatFs statfs_from_host(const struct ::statfs& h, std::int64_t extra_flags) {
  StatFs s;
  s.type = static_cast<std::int64_t>(h.f_type);
  s.bsize = static_cast<std::int64_t>(h.f_bsize);
  s.blocks = h.f_blocks;
  s.bfree = h.f_bfree;
  s.bavail = h.f_bavail;
  s.files = h.f_files;
  s.ffree = h.f_ffree;
  std::memcpy(s.fsid, &h.f_fsid, sizeof s.fsid);
  s.namelen = static_cast<std::int64_t>(h.f_namelen);
  s.frsize = static_cast<std::int64_t>(h.f_frsize);
  s.flags = static_cast<std::int64_t>(h.f_flags) | extra_flags;
  return s;
}

// The host's file systems are read-only to guests.
Result<StatFs> host_statfs(const std::string& host) {
  struct ::statfs h;
  if (::statfs(host.c_str(), &h) != 0) return fail(errno);
  return statfs_from_host(h, kStRdonly);
}

Result<StatFs> statfs_node(SyscallContext& ctx, const std::string& abs, int depth) {
  if (depth > kMaxLinkDepth) return fail(ELOOP);
  const std::string norm = normalize_path(abs);
  Node n = lookup(ctx, norm);
  if (n.kind == Node::Missing) return fail(n.err);
  if (n.kind == Node::Link) {
    if (n.fd_file) return statfs_file(ctx, *n.fd_file);
    return statfs_node(ctx, n.follow, depth + 1);
  }
  if (norm == "/proc" || norm.starts_with("/proc/")) return pseudo_statfs(kProcSuperMagic, 21);
  // A file a guest created lives in memory, in a host directory's name space.
  if (n.kind == Node::Shmem || n.kind == Node::Special) return host_statfs(parent_dir(norm));
  return host_statfs(n.kind == Node::Host || n.kind == Node::HostPseudo ? n.host : norm);
}

}  // namespace

Result<StatFs> statfs_path(SyscallContext& ctx, const std::string& abs) {
  return statfs_node(ctx, abs, 0);
}

Result<StatFs> statfs_file(SyscallContext& ctx, const OpenFile& f) {
  if (f.kind() == "pipe") return pseudo_statfs(kPipefsMagic, 13);
  if (const auto* hs = dynamic_cast<const HostStdio*>(&f)) {
    // mmemu's own stdio: the host's file system under it.
    struct ::statfs h;
    if (::fstatfs(hs->host_fd(), &h) != 0) return fail(errno);
    return statfs_from_host(h, 0);
  }
  const std::string path = f.path();
  if (const auto* sf = dynamic_cast<const ShmemFile*>(&f)) {
    // memfd, MAP_SHARED anonymous and O_TMPFILE files: the internal tmpfs mount.
    if (sf->inode()->st.nlink == 0 || !path.starts_with("/")) return pseudo_statfs(kTmpfsMagic, 1);
  }
  if (path.empty() || path[0] != '/') return pseudo_statfs(kTmpfsMagic, 1);
  return statfs_path(ctx, path);
}

Result<std::string> chdir_path(SyscallContext& ctx, const std::string& abs) {
  auto st = stat_path(ctx, abs, true);
  if (!st) return std::unexpected(st.error());
  if (!S_ISDIR(st->mode)) return fail(ENOTDIR);
  Node n = lookup(ctx, normalize_path(abs));
  if (n.kind == Node::Host || n.kind == Node::HostPseudo) {
    char resolved[PATH_MAX];
    if (!::realpath(n.host.c_str(), resolved)) return fail(errno);
    return std::string(resolved);
  }
  if (n.kind == Node::Link) return normalize_path(n.follow);
  return n.name;
}

// ---- execve's lookup ----

namespace {

// /proc/PID/exe's process, from the link's canonical name; nullptr for any other link.
Process* exe_link_owner(SyscallContext& ctx, const std::string& name) {
  if (!name.starts_with("/proc/") || !name.ends_with("/exe")) return nullptr;
  auto pid = parse_int(name.substr(6, name.size() - 10));
  return pid ? guest_proc(ctx, *pid) : nullptr;
}

Result<ExecTarget> exec_node(SyscallContext& ctx, const std::string& abs, bool follow, int depth) {
  if (depth > kMaxLinkDepth) return fail(ELOOP);
  const std::string norm = normalize_path(abs);
  const bool trailing_slash = abs.size() > 1 && abs.back() == '/';
  Node n = lookup(ctx, norm);
  switch (n.kind) {
    case Node::Missing:
      return fail(n.err);
    case Node::Host: {
      const std::string h = trailing_slash ? n.host + "/" : n.host;
      auto st = host_stat(h, follow);
      if (!st) return std::unexpected(st.error());
      if (S_ISLNK(st->st_mode)) return fail(ELOOP);
      if (!S_ISREG(st->st_mode)) return fail(EACCES);
      char resolved[PATH_MAX];
      if (!::realpath(h.c_str(), resolved)) return fail(errno);
      auto file = ctx.kernel.open_host_file(resolved);
      if (!file) return std::unexpected(file.error());
      return ExecTarget{*file, resolved, file_stat_from_host(*st), true};
    }
    case Node::Shmem: {
      if (trailing_slash) return fail(ENOTDIR);
      n.shmem->file->get();
      return ExecTarget{n.shmem->file, n.shmem->path, n.shmem->stat(), false};
    }
    case Node::Link: {
      if (!follow && !trailing_slash) return fail(ELOOP);
      if (n.fd_file) return exec_target_of(ctx, n.fd_file);
      if (Process* p = exe_link_owner(ctx, n.name); p && p->has_mm() && p->as->exe_file) {
        // The executable itself, as the kernel's mm->exe_file: replaced or deleted, it runs.
        File* f = p->as->exe_file;
        struct ::stat st;
        FileStat fst;
        if (::stat(p->as->exe_path.c_str(), &st) == 0) {
          fst = file_stat_from_host(st);
        } else {
          fst.mode = S_IFREG | 0755;
          fst.size = static_cast<std::int64_t>(f->size());
        }
        f->get();
        return ExecTarget{f, p->as->exe_path, fst, false};
      }
      return exec_node(ctx, n.follow, true, depth + 1);
    }
    case Node::HostPseudo:
    case Node::Dir:
    case Node::Gen:
    case Node::Dev:
    case Node::Special:
      // No /proc, /sys or device file (nor a FIFO) is a regular executable file.
      if (trailing_slash && n.kind != Node::Dir && n.kind != Node::HostPseudo) return fail(ENOTDIR);
      return fail(EACCES);
  }
  return fail(ENOENT);
}

}  // namespace

Result<ExecTarget> exec_target(SyscallContext& ctx, const std::string& abs, bool follow) {
  return exec_node(ctx, abs, follow, 0);
}

Result<ExecTarget> exec_target_of(SyscallContext& ctx, const OpenFileRef& f) {
  if (auto* sf = dynamic_cast<ShmemFile*>(f.get())) {
    sf->file().get();
    return ExecTarget{&sf->file(), sf->path(), sf->inode()->stat(), false};
  }
  auto st = f->stat();
  if (!st) return std::unexpected(st.error());
  if (!S_ISREG(st->mode)) return fail(EACCES);
  if (dynamic_cast<HostFile*>(f.get())) {
    File* file = f->mmap_file();
    file->get();
    return ExecTarget{file, f->path(), *st, true};
  }
  if (f->kind() == "path") return exec_node(ctx, f->path(), true, 0);  // an O_PATH descriptor
  return fail(EACCES);
}

}  // namespace mmemu
