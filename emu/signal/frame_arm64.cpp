// The arm64 rt_sigframe, as arch/arm64/kernel/signal.c lays it out:
//   frame + 0    siginfo (128)
//   frame + 128  struct ucontext: uc_flags, uc_link, uc_stack (24), uc_sigmask (8),
//                padding to 1024 bits of sigset, then uc_mcontext (16-aligned, at +304):
//                fault_address, x0..x30, sp, pc, pstate, __reserved[4096] holding the
//                fpsimd_context record, an esr_context record after a fault, and the
//                terminating null record
// followed above it by a frame record {x29, x30} that x29 points at in the handler.
#include "emu/image/arch_pages.hpp"
#include "emu/kernel/kernel.hpp"
#include "emu/signal/frame.hpp"
#include "vma/fault.hpp"

namespace mmemu::sigframe {

namespace {

constexpr std::size_t kUc = 128;
constexpr std::size_t kUcStack = kUc + 16;
constexpr std::size_t kUcSigmask = kUc + 40;
constexpr std::size_t kMc = kUc + 176;  // uc_mcontext
constexpr std::size_t kScFault = kMc, kScRegs = kMc + 8, kScSp = kMc + 256, kScPc = kMc + 264,
                      kScPstate = kMc + 272, kScReserved = kMc + 288;
constexpr std::size_t kReservedSize = 4096;
constexpr std::size_t kFrameSize = kScReserved + kReservedSize;  // sizeof(struct rt_sigframe)
static_assert(kFrameSize == 4688);

constexpr std::uint32_t kFpsimdMagic = 0x46508001, kEsrMagic = 0x45535201;
constexpr std::uint32_t kFpsimdSize = 528, kEsrSize = 16;
constexpr std::uint64_t kNzcvMask = 0xf0000000ULL;

}  // namespace

bool setup_rt_frame_arm64(Kernel&, Process& p, int sig, const KSigAction& ka, const SigInfo& info,
                          sigset64 old_blocked) {
  auto ctx = std::get<Arm64Context>(p.cpu->save_context());
  const std::uint64_t user_sp = ctx.sp;
  std::uint64_t sp = sigsp(p, ka, user_sp);
  const std::uint64_t record = (sp - 16) & ~15ULL;  // struct frame_record
  const std::uint64_t frame = (record & ~15ULL) - kFrameSize;

  std::vector<std::uint8_t> f(kFrameSize, 0);
  std::uint8_t* b = f.data();
  if (ka.flags & kSaSiginfo) {
    const auto si = encode_siginfo(info);
    std::memcpy(b, si.data(), si.size());
  }
  save_altstack(p, user_sp, b + kUcStack);
  put<std::uint64_t>(b, kUcSigmask, old_blocked);
  const bool fault = p.last_trap.valid;
  put<std::uint64_t>(b, kScFault, fault ? p.last_trap.addr : 0);
  for (unsigned i = 0; i < 31; ++i)
    put<std::uint64_t>(b, kScRegs + 8 * i, ctx.x[i]);
  put<std::uint64_t>(b, kScSp, ctx.sp);
  put<std::uint64_t>(b, kScPc, ctx.pc);
  put<std::uint64_t>(b, kScPstate, ctx.nzcv & kNzcvMask);  // EL0t, interrupts unmasked
  std::size_t at = kScReserved;
  put<std::uint32_t>(b, at, kFpsimdMagic);
  put<std::uint32_t>(b, at + 4, kFpsimdSize);
  put<std::uint32_t>(b, at + 8, ctx.fpsr);
  put<std::uint32_t>(b, at + 12, ctx.fpcr);
  for (unsigned i = 0; i < 32; ++i)
    std::memcpy(b + at + 16 + 16 * i, ctx.v[i].data(), 16);
  at += kFpsimdSize;
  if (fault) {
    put<std::uint32_t>(b, at, kEsrMagic);
    put<std::uint32_t>(b, at + 4, kEsrSize);
    put<std::uint64_t>(b, at + 8, p.last_trap.esr);
    at += kEsrSize;
  }
  // The null terminator record is already zero.
  const std::uint64_t fr[2] = {ctx.x[29], ctx.x[30]};
  Mm& mm = p.mm();
  if (!copy_to_user(mm, record, fr, sizeof fr) || !copy_to_user(mm, frame, b, f.size()))
    return false;

  ctx.x[0] = static_cast<std::uint64_t>(sig);
  if (ka.flags & kSaSiginfo) {
    ctx.x[1] = frame;
    ctx.x[2] = frame + kUc;
  }
  ctx.sp = frame;
  ctx.x[29] = record;
  ctx.pc = ka.handler;
  ctx.x[30] = (ka.flags & kSaRestorer) ? ka.restorer : sigreturn_trampoline(Arch::Arm64);
  return static_cast<bool>(p.cpu->restore_context(ctx));
}

bool restore_rt_frame_arm64(Kernel&, Process& p, sigset64* blocked) {
  auto ctx = std::get<Arm64Context>(p.cpu->save_context());
  const std::uint64_t frame = ctx.sp;
  if (frame & 15) return false;  // Linux: a misaligned sp is a bad frame
  std::vector<std::uint8_t> f(kFrameSize);
  std::uint8_t* b = f.data();
  Mm& mm = p.mm();
  if (!copy_from_user(mm, b, frame, f.size())) return false;
  *blocked = get<std::uint64_t>(b, kUcSigmask) & ~kUnblockable;
  for (unsigned i = 0; i < 31; ++i)
    ctx.x[i] = get<std::uint64_t>(b, kScRegs + 8 * i);
  ctx.sp = get<std::uint64_t>(b, kScSp);
  ctx.pc = get<std::uint64_t>(b, kScPc);
  const auto pstate = get<std::uint64_t>(b, kScPstate);
  // valid_user_regs: only an EL0 state is acceptable; keep NZCV, nothing else.
  if (pstate & ~kNzcvMask & 0xf) return false;
  ctx.nzcv = pstate & kNzcvMask;
  // Records: fpsimd_context is required; others (esr) are skipped; null ends them.
  bool have_fp = false;
  std::size_t at = kScReserved;
  while (at + 8 <= kScReserved + kReservedSize) {
    const auto magic = get<std::uint32_t>(b, at);
    const auto size = get<std::uint32_t>(b, at + 4);
    if (magic == 0) break;
    if (size < 8 || size % 16 != 0 || at + size > kScReserved + kReservedSize) return false;
    if (magic == kFpsimdMagic) {
      if (size != kFpsimdSize || have_fp) return false;
      ctx.fpsr = get<std::uint32_t>(b, at + 8);
      ctx.fpcr = get<std::uint32_t>(b, at + 12);
      for (unsigned i = 0; i < 32; ++i)
        std::memcpy(ctx.v[i].data(), b + at + 16 + 16 * i, 16);
      have_fp = true;
    } else if (magic != kEsrMagic) {
      return false;  // records mmemu never writes (SVE, ZA, extra...)
    }
    at += size;
  }
  if (!have_fp) return false;
  if (!p.cpu->restore_context(ctx)) return false;
  restore_altstack(p, b + kUcStack, ctx.sp);
  return true;
}

}  // namespace mmemu::sigframe
