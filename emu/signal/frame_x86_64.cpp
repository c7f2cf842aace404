// The x86_64 rt_sigframe, as arch/x86/kernel/signal_64.c lays it out for a CPU with
// FXSR but no XSAVE (the CPU Unicorn emulates):
//   frame + 0    pretcode (sa_restorer)
//   frame + 8    struct ucontext: uc_flags, uc_link, uc_stack (24), uc_mcontext (struct
//                sigcontext, 256), uc_sigmask (8)
//   frame + 312  siginfo (128)
// and the 512-byte fxsave image at a 64-byte aligned address above the frame, pointed to
// by sigcontext.fpstate.
#include "emu/kernel/kernel.hpp"
#include "emu/signal/frame.hpp"
#include "vma/fault.hpp"

namespace mmemu::sigframe {

namespace {

constexpr std::size_t kFrameSize = 440;
constexpr std::size_t kUc = 8;
constexpr std::size_t kUcStack = kUc + 16;
constexpr std::size_t kMc = kUc + 40;  // uc_mcontext
constexpr std::size_t kUcSigmask = kMc + 256;
constexpr std::size_t kInfo = kUcSigmask + 8;
static_assert(kInfo == 312 && kInfo + kSiginfoSize == kFrameSize);
constexpr std::size_t kFxsaveSize = 512;

// struct sigcontext offsets.
constexpr std::size_t kScR8 = 0, kScRdi = 64, kScRsi = 72, kScRbp = 80, kScRbx = 88, kScRdx = 96,
                      kScRax = 104, kScRcx = 112, kScRsp = 120, kScRip = 128, kScEflags = 136,
                      kScCs = 144, kScGs = 146, kScFs = 148, kScSs = 150, kScErr = 152,
                      kScTrapno = 160, kScOldmask = 168, kScCr2 = 176, kScFpstate = 184;

constexpr std::uint64_t kUcSigcontextSs = 0x2, kUcStrictRestoreSs = 0x4;
// FIX_EFLAGS: the flags sigreturn may change (AC OF DF TF SF ZF AF PF CF RF).
constexpr std::uint64_t kFixEflags =
    0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;

// gpr indices in X86Context: rax rbx rcx rdx rsi rdi rbp rsp r8..r15.
enum : std::size_t { RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP, R8 };

// FXSAVE's abridged tag byte from the full x87 tag word (bit i set: register i not empty).
std::uint8_t abridge(std::uint16_t ftw) {
  std::uint8_t t = 0;
  for (int i = 0; i < 8; ++i)
    if (((ftw >> (2 * i)) & 3) != 3) t = static_cast<std::uint8_t>(t | (1 << i));
  return t;
}

std::uint16_t unabridge(std::uint8_t t) {
  std::uint16_t w = 0;
  for (int i = 0; i < 8; ++i)
    if (!(t & (1 << i))) w = static_cast<std::uint16_t>(w | (3 << (2 * i)));
  return w;
}

void encode_fxsave(const X86Context& c, std::uint8_t* fx) {
  std::memset(fx, 0, kFxsaveSize);
  put<std::uint16_t>(fx, 0, c.fcw);
  put<std::uint16_t>(fx, 2, c.fsw);
  fx[4] = abridge(c.ftw);
  put<std::uint32_t>(fx, 24, c.mxcsr);
  put<std::uint32_t>(fx, 28, 0xffff);  // mxcsr_mask
  const unsigned top = (c.fsw >> 11) & 7;
  for (unsigned i = 0; i < 8; ++i)  // ST(i) is physical register (TOP + i) mod 8
    std::memcpy(fx + 32 + 16 * i, c.fpr[(top + i) & 7].data(), 10);
  for (unsigned i = 0; i < 16; ++i)
    std::memcpy(fx + 160 + 16 * i, c.xmm[i].data(), 16);
}

void decode_fxsave(const std::uint8_t* fx, X86Context& c) {
  c.fcw = get<std::uint16_t>(fx, 0);
  c.fsw = get<std::uint16_t>(fx, 2);
  c.ftw = unabridge(fx[4]);
  c.mxcsr = get<std::uint32_t>(fx, 24) & 0xffff;  // reserved bits would #GP on fxrstor
  const unsigned top = (c.fsw >> 11) & 7;
  for (unsigned i = 0; i < 8; ++i)
    std::memcpy(c.fpr[(top + i) & 7].data(), fx + 32 + 16 * i, 10);
  for (unsigned i = 0; i < 16; ++i)
    std::memcpy(c.xmm[i].data(), fx + 160 + 16 * i, 16);
}

// fpu__clear_user_states: the handler starts with the init FPU state.
void init_fpu(X86Context& c) {
  c.fcw = 0x37f;
  c.fsw = 0;
  c.ftw = 0xffff;
  for (auto& r : c.fpr)
    r.fill(0);
  c.mxcsr = 0x1f80;
  for (auto& x : c.xmm)
    x.fill(0);
}

}  // namespace

bool setup_rt_frame_x86(Kernel&, Process& p, int sig, const KSigAction& ka, const SigInfo& info,
                        sigset64 old_blocked) {
  // x86_64 has no default trampoline: a handler without SA_RESTORER cannot return.
  if (!(ka.flags & kSaRestorer)) return false;
  auto ctx = std::get<X86Context>(p.cpu->save_context());
  const std::uint64_t user_sp = ctx.gpr[RSP];
  std::uint64_t sp = sigsp(p, ka, user_sp - 128);  // below the red zone
  const std::uint64_t fpstate = (sp - kFxsaveSize) & ~63ULL;
  const std::uint64_t frame = ((fpstate - kFrameSize) & ~15ULL) - 8;

  std::uint8_t f[kFrameSize] = {};
  put<std::uint64_t>(f, 0, ka.restorer);
  put<std::uint64_t>(f, kUc, kUcSigcontextSs | kUcStrictRestoreSs);
  save_altstack(p, user_sp, f + kUcStack);
  std::uint8_t* sc = f + kMc;
  for (unsigned i = 0; i < 8; ++i)
    put<std::uint64_t>(sc, kScR8 + 8 * i, ctx.gpr[R8 + i]);
  put<std::uint64_t>(sc, kScRdi, ctx.gpr[RDI]);
  put<std::uint64_t>(sc, kScRsi, ctx.gpr[RSI]);
  put<std::uint64_t>(sc, kScRbp, ctx.gpr[RBP]);
  put<std::uint64_t>(sc, kScRbx, ctx.gpr[RBX]);
  put<std::uint64_t>(sc, kScRdx, ctx.gpr[RDX]);
  put<std::uint64_t>(sc, kScRax, ctx.gpr[RAX]);
  put<std::uint64_t>(sc, kScRcx, ctx.gpr[RCX]);
  put<std::uint64_t>(sc, kScRsp, user_sp);
  put<std::uint64_t>(sc, kScRip, ctx.rip);
  put<std::uint64_t>(sc, kScEflags, ctx.rflags);
  put<std::uint16_t>(sc, kScCs, 0x33);
  put<std::uint16_t>(sc, kScGs, 0);
  put<std::uint16_t>(sc, kScFs, 0);
  put<std::uint16_t>(sc, kScSs, 0x2b);
  if (p.last_trap.valid) {
    put<std::uint64_t>(sc, kScErr, p.last_trap.err);
    put<std::uint64_t>(sc, kScTrapno, p.last_trap.trapno);
    put<std::uint64_t>(sc, kScCr2, p.last_trap.addr);
  }
  put<std::uint64_t>(sc, kScOldmask, old_blocked);
  put<std::uint64_t>(sc, kScFpstate, fpstate);
  put<std::uint64_t>(f, kUcSigmask, old_blocked);
  if (ka.flags & kSaSiginfo) {
    const auto si = encode_siginfo(info);
    std::memcpy(f + kInfo, si.data(), si.size());
  }
  std::uint8_t fx[kFxsaveSize];
  encode_fxsave(ctx, fx);
  Mm& mm = p.mm();
  if (!copy_to_user(mm, fpstate, fx, sizeof fx) || !copy_to_user(mm, frame, f, sizeof f))
    return false;

  ctx.gpr[RDI] = static_cast<std::uint64_t>(sig);
  ctx.gpr[RSI] = frame + kInfo;
  ctx.gpr[RDX] = frame + kUc;
  ctx.gpr[RAX] = 0;
  ctx.gpr[RSP] = frame;
  ctx.rip = ka.handler;
  ctx.rflags &= ~(0x400ULL | 0x10000ULL | 0x100ULL);  // DF, RF, TF
  init_fpu(ctx);
  return static_cast<bool>(p.cpu->restore_context(ctx));
}

bool restore_rt_frame_x86(Kernel&, Process& p, sigset64* blocked) {
  auto ctx = std::get<X86Context>(p.cpu->save_context());
  const std::uint64_t frame = ctx.gpr[RSP] - 8;  // the handler's ret popped pretcode
  std::uint8_t f[kFrameSize];
  Mm& mm = p.mm();
  if (!copy_from_user(mm, f, frame, sizeof f)) return false;
  *blocked = get<std::uint64_t>(f, kUcSigmask) & ~kUnblockable;
  const std::uint8_t* sc = f + kMc;
  for (unsigned i = 0; i < 8; ++i)
    ctx.gpr[R8 + i] = get<std::uint64_t>(sc, kScR8 + 8 * i);
  ctx.gpr[RDI] = get<std::uint64_t>(sc, kScRdi);
  ctx.gpr[RSI] = get<std::uint64_t>(sc, kScRsi);
  ctx.gpr[RBP] = get<std::uint64_t>(sc, kScRbp);
  ctx.gpr[RBX] = get<std::uint64_t>(sc, kScRbx);
  ctx.gpr[RDX] = get<std::uint64_t>(sc, kScRdx);
  ctx.gpr[RAX] = get<std::uint64_t>(sc, kScRax);
  ctx.gpr[RCX] = get<std::uint64_t>(sc, kScRcx);
  ctx.gpr[RSP] = get<std::uint64_t>(sc, kScRsp);
  ctx.rip = get<std::uint64_t>(sc, kScRip);
  ctx.rflags = (ctx.rflags & ~kFixEflags) | (get<std::uint64_t>(sc, kScEflags) & kFixEflags);
  const auto fpstate = get<std::uint64_t>(sc, kScFpstate);
  if (fpstate) {
    std::uint8_t fx[kFxsaveSize];
    if (!copy_from_user(mm, fx, fpstate, sizeof fx)) return false;
    decode_fxsave(fx, ctx);
  } else {
    init_fpu(ctx);
  }
  if (!p.cpu->restore_context(ctx)) return false;
  restore_altstack(p, f + kUcStack, ctx.gpr[RSP]);
  return true;
}

}  // namespace mmemu::sigframe
