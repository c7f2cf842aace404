// Pieces shared by the two architectures' signal frames.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "emu/kernel/process.hpp"
#include "emu/signal/signal.hpp"

namespace mmemu::sigframe {

inline constexpr int kSsOnStack = 1, kSsDisable = 2;
inline constexpr std::size_t kSiginfoSize = 128;

template <class T>
void put(std::uint8_t* buf, std::size_t off, T v) {
  std::memcpy(buf + off, &v, sizeof v);
}
template <class T>
T get(const std::uint8_t* buf, std::size_t off) {
  T v;
  std::memcpy(&v, buf + off, sizeof v);
  return v;
}

// The guest's siginfo_t (same layout on x86_64 and arm64).
std::array<std::uint8_t, kSiginfoSize> encode_siginfo(const SigInfo& i);

// sas_ss_flags: where sp is relative to the alternate stack.
int sas_ss_flags(const AltStack& a, std::uint64_t sp);
// The top of the stack a frame goes on: the alternate stack's top if the action asks for
// it and sp is not already on it, else sp.
std::uint64_t sigsp(const Process& p, const KSigAction& ka, std::uint64_t sp);
// stack_t {ss_sp, ss_flags, ss_size} as __save_altstack writes it.
void save_altstack(const Process& p, std::uint64_t sp, std::uint8_t* out24);
// restore_altstack: applies a stack_t read from the frame (errors other than EFAULT are
// ignored, as Linux does).
void restore_altstack(Process& p, const std::uint8_t* in24, std::uint64_t sp);

bool setup_rt_frame_x86(Kernel& k, Process& p, int sig, const KSigAction& ka, const SigInfo& info,
                        sigset64 old_blocked);
bool restore_rt_frame_x86(Kernel& k, Process& p, sigset64* blocked);
bool setup_rt_frame_arm64(Kernel& k, Process& p, int sig, const KSigAction& ka, const SigInfo& info,
                          sigset64 old_blocked);
bool restore_rt_frame_arm64(Kernel& k, Process& p, sigset64* blocked);

}  // namespace mmemu::sigframe
