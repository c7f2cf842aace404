// What each system call's arguments are, for the trace (strace-like): one table, keyed by
// the generic Sys (names and argument lists are the same in both ABIs, only numbers differ),
// covering every call mmemu implements. Rendering never changes the guest: strings are read
// through the page tables without faulting anything in and without setting accessed bits
// (an unmapped or unreadable byte ends the string), so a trace on or off runs the same.
// Nothing here fails: what cannot be read is shown as the bare address.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "emu/syscalls/syscall.hpp"

namespace mmemu {

class Mm;

// How one argument is shown.
enum class ArgKind : std::uint8_t {
  Addr,    // a pointer or address: "0x..."
  Flags,   // flags, a mode, a command or key: "0x..."
  Fd,      // a descriptor (a C int: AT_FDCWD is -100)
  Int,     // a C int: pid, signal, which, how, resource, uid (-1 stays -1)
  Size,    // an unsigned count, size or length
  Off,     // a signed 64-bit offset
  String,  // a NUL-terminated string (a path): {"addr": "0x...", "str": "..."}
};

struct SysArgSpec {
  std::uint8_t count = 0;  // how many arguments the call takes
  std::array<ArgKind, 6> kinds{};
  bool ret_addr = false;  // returns an address (mmap, mremap, brk, shmat): ret in hex
  bool known = false;     // the table has this call
};

// The call's row; known == false for a call the table lacks (every implemented call has a
// row: tests/emu/syscall_args_test.cpp checks it against make_syscall_table()).
const SysArgSpec& sys_arg_spec(Sys s);

// The longest string an argument shows (longer ones carry "truncated": true).
inline constexpr std::size_t kTraceStringMax = 256;

// The string at va in mm, read without faulting: nullopt when its first byte is not
// readable. `truncated` (if given) tells whether it went on past `max` bytes or into an
// unreadable page before its NUL.
std::optional<std::string> peek_user_string(Mm& mm, std::uint64_t va, std::size_t max,
                                            bool* truncated = nullptr);

// The arguments as a JSON array of `spec.count` values; strings are read from mm when it
// is given (nullptr: addresses only).
nlohmann::json sys_args_json(Sys s, const std::array<std::uint64_t, 6>& args, Mm* mm);
// The return value: hex for an address-returning call that succeeded, else a number.
nlohmann::json sys_ret_json(Sys s, std::int64_t ret);

}  // namespace mmemu
