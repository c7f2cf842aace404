// The plain-Unicorn runner: one engine per run, flat memory, write and exit only.
#include "emu/cpu/flat_unicorn.hpp"

#include <cerrno>
#include <map>
#include <memory>

#include "emu/cpu/unicorn_arch.hpp"

namespace mmemu {

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kStackTop = 0x7ffff0000000, kStackSize = 1 << 20;
constexpr std::uint32_t kArmSvc = 2;  // UC_HOOK_INTR number of svc

struct FlatState {
  Arch arch;
  const UnicornArchOps& ops;
  FlatRunResult& r;
};

// write(1, ...) and exit/exit_group; anything else is -ENOSYS.
void flat_syscall(uc_engine* uc, FlatState& s) {
  const bool x86 = s.arch == Arch::X86_64;
  const std::uint64_t nr = uc_read_u64(uc, s.ops.nr);
  const std::uint64_t nr_write = x86 ? 1 : 64, nr_exit = x86 ? 60 : 93,
                      nr_exit_group = x86 ? 231 : 94;
  if (nr == nr_write) {
    const std::uint64_t len = uc_read_u64(uc, s.ops.args[2]);
    std::string buf(len, '\0');
    if (uc_read_u64(uc, s.ops.args[0]) != 1 ||
        uc_mem_read(uc, uc_read_u64(uc, s.ops.args[1]), buf.data(), len) != UC_ERR_OK) {
      uc_write_u64(uc, s.ops.ret, static_cast<std::uint64_t>(-EFAULT));
      return;
    }
    s.r.out += buf;
    uc_write_u64(uc, s.ops.ret, len);
  } else if (nr == nr_exit || nr == nr_exit_group) {
    s.r.exited = true;
    s.r.status = static_cast<int>(uc_read_u64(uc, s.ops.args[0]) & 0xff);
    uc_emu_stop(uc);
  } else {
    uc_write_u64(uc, s.ops.ret, static_cast<std::uint64_t>(-ENOSYS));
  }
}

void flat_x86_syscall(uc_engine* uc, void* s) {
  flat_syscall(uc, *static_cast<FlatState*>(s));
}
void flat_arm64_intr(uc_engine* uc, std::uint32_t intno, void* s) {
  if (intno == kArmSvc) {  // the pc is already past the svc
    flat_syscall(uc, *static_cast<FlatState*>(s));
  } else {
    uc_emu_stop(uc);
  }
}
void flat_code(uc_engine*, std::uint64_t, std::uint32_t, void* s) {
  ++static_cast<FlatState*>(s)->r.insns;
}

// Maps and fills the segments: runs of neighbouring pages with equal permissions, one
// region each.
bool load_segments(uc_engine* uc, const std::vector<FlatSegment>& segments) {
  std::map<std::uint64_t, std::uint32_t> page_prot;
  for (const FlatSegment& seg : segments)
    for (std::uint64_t pg = seg.vaddr & ~(kPage - 1); pg < seg.vaddr + seg.memsz; pg += kPage)
      page_prot[pg] |= uc_prot_of(seg.perms);
  for (auto it = page_prot.begin(); it != page_prot.end();) {
    const std::uint64_t start = it->first;
    const std::uint32_t prot = it->second;
    std::uint64_t end = start + kPage;
    for (++it; it != page_prot.end() && it->first == end && it->second == prot; ++it)
      end += kPage;
    if (uc_mem_map(uc, start, end - start, prot) != UC_ERR_OK) return false;
  }
  for (const FlatSegment& seg : segments)
    if (!seg.bytes.empty() &&
        uc_mem_write(uc, seg.vaddr, seg.bytes.data(), seg.bytes.size()) != UC_ERR_OK)
      return false;
  return true;
}

// Maps the stack and builds the initial one: argc, argv..., NULL, envp NULL, AT_NULL;
// strings above it. Sets *sp to it.
bool build_stack(uc_engine* uc, const std::vector<std::string>& argv, std::uint64_t* sp) {
  if (uc_mem_map(uc, kStackTop - kStackSize, kStackSize, UC_PROT_READ | UC_PROT_WRITE) != UC_ERR_OK)
    return false;
  std::uint64_t at = kStackTop;
  std::vector<std::uint64_t> words{argv.size()};
  for (const std::string& s : argv) {
    at -= s.size() + 1;
    if (uc_mem_write(uc, at, s.c_str(), s.size() + 1) != UC_ERR_OK) return false;
    words.push_back(at);
  }
  words.insert(words.end(), {0, 0, 0 /* AT_NULL */, 0});
  at = (at - words.size() * 8) & ~15ULL;
  *sp = at;
  return uc_mem_write(uc, at, words.data(), words.size() * 8) == UC_ERR_OK;
}

}  // namespace

FlatRunResult run_flat_unicorn(const FlatProgram& program, const FlatRunOptions& options) {
  FlatRunResult r;
  const bool x86 = program.arch == Arch::X86_64;
  const UnicornArchOps& ops = x86 ? unicorn_x86_ops() : unicorn_arm64_ops();
  uc_engine* raw = nullptr;
  if (uc_open(ops.arch, ops.mode, &raw) != UC_ERR_OK) {
    r.error = "uc_open failed";
    return r;
  }
  const std::unique_ptr<uc_engine, decltype(&uc_close)> uc(raw, &uc_close);

  FlatState st{program.arch, ops, r};
  std::uint64_t sp = 0;
  uc_hook h;
  bool ok = load_segments(uc.get(), program.segments) && build_stack(uc.get(), program.argv, &sp);
  if (x86) {
    ok = ok && uc_hook_add(uc.get(), &h, UC_HOOK_INSN, reinterpret_cast<void*>(&flat_x86_syscall),
                           &st, 1, 0, UC_X86_INS_SYSCALL) == UC_ERR_OK;
  } else {
    ok = ok && uc_hook_add(uc.get(), &h, UC_HOOK_INTR, reinterpret_cast<void*>(&flat_arm64_intr),
                           &st, 1, 0) == UC_ERR_OK;
  }
  if (options.code_hook)
    ok = ok && uc_hook_add(uc.get(), &h, UC_HOOK_CODE, reinterpret_cast<void*>(&flat_code), &st, 1,
                           0) == UC_ERR_OK;
  if (!ok) {
    r.error = "setting up the engine failed";
    return r;
  }
  uc_write_u64(uc.get(), ops.sp, sp);
  const uc_err e = uc_emu_start(uc.get(), program.entry, 0, 0, options.max_insns);
  if (e != UC_ERR_OK) r.error = std::string("uc_emu_start: ") + uc_strerror(e);
  return r;
}

}  // namespace mmemu
