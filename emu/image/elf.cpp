// ELF64 executable parsing and validation (checks follow Linux's load_elf_binary where it
// has one, and the ELF specification where Linux is silent).
#include "emu/image/elf.hpp"

#include <fmt/format.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace mmemu {
namespace {

// ELF constants (elf.h values), kept local so the parser does not depend on the host's
// <elf.h>.
constexpr std::size_t kEhdrSize = 64;
constexpr std::size_t kPhdrSize = 56;
constexpr std::uint8_t kClass64 = 2;
constexpr std::uint8_t kData2Lsb = 1;
constexpr std::uint8_t kEvCurrent = 1;
constexpr std::uint16_t kEtRel = 1, kEtExec = 2, kEtDyn = 3, kEtCore = 4;
constexpr std::uint16_t kEmX86_64 = 62, kEmAarch64 = 183;
constexpr std::uint32_t kPtLoad = 1, kPtInterp = 3, kPtPhdr = 6, kPtTls = 7;
constexpr std::uint32_t kPtGnuStack = 0x6474e551;
constexpr std::uint16_t kPnXnum = 0xffff;
// Linux reads at most one page of program headers (load_elf_phdrs: size <= ELF_MIN_ALIGN).
constexpr std::size_t kMaxPhdrBytes = 4096;
constexpr std::uint64_t kMaxFileBytes = 1ULL << 32;

std::uint64_t le(std::span<const std::uint8_t> b, std::size_t off, unsigned n) {
  std::uint64_t v = 0;
  for (unsigned i = 0; i < n; i++)
    v |= std::uint64_t{b[off + i]} << (8 * i);
  return v;
}

std::unexpected<ElfError> err(ElfErrorKind k, std::string msg) {
  return std::unexpected(ElfError{k, std::move(msg)});
}

std::string machine_name(std::uint16_t m) {
  switch (m) {
    case 3:
      return "EM_386 (i386)";
    case 8:
      return "EM_MIPS";
    case 20:
      return "EM_PPC";
    case 21:
      return "EM_PPC64";
    case 40:
      return "EM_ARM (32-bit ARM)";
    case 243:
      return "EM_RISCV";
    default:
      return fmt::format("machine {}", m);
  }
}

bool power_of_two_or_zero(std::uint64_t a) {
  return (a & (a - 1)) == 0;
}

struct Phdr {
  std::uint32_t type, flags;
  std::uint64_t offset, vaddr, filesz, memsz, align;
};

Phdr read_phdr(std::span<const std::uint8_t> f, std::size_t at) {
  return Phdr{static_cast<std::uint32_t>(le(f, at, 4)),
              static_cast<std::uint32_t>(le(f, at + 4, 4)),
              le(f, at + 8, 8),
              le(f, at + 16, 8),
              le(f, at + 32, 8),
              le(f, at + 40, 8),
              le(f, at + 48, 8)};
}

// The file bytes [offset, offset + filesz) must lie inside the file.
bool in_file(std::uint64_t offset, std::uint64_t size, std::uint64_t file_size) {
  return offset <= file_size && size <= file_size - offset;
}

}  // namespace

std::string_view elf_error_name(ElfErrorKind k) {
  switch (k) {
    case ElfErrorKind::Io:
      return "io";
    case ElfErrorKind::Truncated:
      return "truncated";
    case ElfErrorKind::BadMagic:
      return "bad-magic";
    case ElfErrorKind::BadClass:
      return "bad-class";
    case ElfErrorKind::BadEndianness:
      return "bad-endianness";
    case ElfErrorKind::BadVersion:
      return "bad-version";
    case ElfErrorKind::BadType:
      return "bad-type";
    case ElfErrorKind::BadMachine:
      return "bad-machine";
    case ElfErrorKind::BadHeaderSize:
      return "bad-header-size";
    case ElfErrorKind::BadPhdrCount:
      return "bad-phdr-count";
    case ElfErrorKind::PhdrsOutsideFile:
      return "phdrs-outside-file";
    case ElfErrorKind::SegmentOutsideFile:
      return "segment-outside-file";
    case ElfErrorKind::FileszExceedsMemsz:
      return "filesz-exceeds-memsz";
    case ElfErrorKind::BadAlignment:
      return "bad-alignment";
    case ElfErrorKind::BadSegmentOrder:
      return "bad-segment-order";
    case ElfErrorKind::AddressRange:
      return "address-range";
    case ElfErrorKind::NoLoadSegment:
      return "no-load-segment";
    case ElfErrorKind::BadEntry:
      return "bad-entry";
    case ElfErrorKind::BadTls:
      return "bad-tls";
    case ElfErrorKind::Dynamic:
      return "dynamic";
  }
  return "?";
}

int ElfError::errno_code() const {
  if (kind == ElfErrorKind::Io) return EIO;
  if (kind == ElfErrorKind::AddressRange) return EINVAL;
  return ENOEXEC;
}

int ElfSegment::prot() const {
  return (flags & ELF_PF_R ? PROT_READ : 0) | (flags & ELF_PF_W ? PROT_WRITE : 0) |
         (flags & ELF_PF_X ? PROT_EXEC : 0);
}

std::uint64_t ElfImage::lo() const {
  return loads.empty() ? 0 : page_align_down(loads.front().vaddr);
}
std::uint64_t ElfImage::hi() const {
  return loads.empty() ? 0 : page_align_up(loads.back().vaddr + loads.back().memsz);
}

ElfResult<ElfImage> parse_elf(std::span<const std::uint8_t> f) {
  const std::uint64_t size = f.size();
  if (size < 4)
    return err(ElfErrorKind::Truncated,
               fmt::format("file is {} bytes: too short for an ELF header", size));
  if (!(f[0] == 0x7f && f[1] == 'E' && f[2] == 'L' && f[3] == 'F'))
    return err(ElfErrorKind::BadMagic, "not an ELF file (bad magic)");
  // Identification bytes that are present are checked before the length, so a short
  // 32-bit or big-endian file is reported as such.
  if (size > 4 && f[4] != kClass64)
    return err(
        ElfErrorKind::BadClass,
        fmt::format("ELF class {} is not supported: only 64-bit (ELFCLASS64) executables", f[4]));
  if (size > 5 && f[5] != kData2Lsb)
    return err(ElfErrorKind::BadEndianness,
               "not a little-endian ELF file (EI_DATA is not ELFDATA2LSB)");
  if (size > 6 && f[6] != kEvCurrent)
    return err(ElfErrorKind::BadVersion, "EI_VERSION is not EV_CURRENT (1)");
  if (size < kEhdrSize)
    return err(ElfErrorKind::Truncated,
               fmt::format("file is {} bytes: truncated inside the 64-byte ELF header", size));

  ElfImage img;
  std::uint16_t type = static_cast<std::uint16_t>(le(f, 16, 2));
  std::uint16_t machine = static_cast<std::uint16_t>(le(f, 18, 2));
  std::uint32_t version = static_cast<std::uint32_t>(le(f, 20, 4));
  img.entry = le(f, 24, 8);
  img.phoff = le(f, 32, 8);
  std::uint16_t ehsize = static_cast<std::uint16_t>(le(f, 52, 2));
  img.phentsize = static_cast<std::uint16_t>(le(f, 54, 2));
  img.phnum = static_cast<std::uint16_t>(le(f, 56, 2));

  if (version != kEvCurrent)
    return err(ElfErrorKind::BadVersion,
               fmt::format("e_version is {}, not EV_CURRENT (1)", version));
  if (type == kEtRel)
    return err(ElfErrorKind::BadType, "a relocatable object (ET_REL), not an executable");
  if (type == kEtCore)
    return err(ElfErrorKind::BadType, "a core dump (ET_CORE), not an executable");
  if (type != kEtExec && type != kEtDyn)
    return err(ElfErrorKind::BadType, fmt::format("e_type {} is neither ET_EXEC nor ET_DYN", type));
  img.pie = type == kEtDyn;
  if (machine == kEmX86_64) {
    img.arch = Arch::X86_64;
  } else if (machine == kEmAarch64) {
    img.arch = Arch::Arm64;
  } else {
    return err(ElfErrorKind::BadMachine,
               fmt::format("{} is not supported: only x86_64 (EM_X86_64) and AArch64 (EM_AARCH64)",
                           machine_name(machine)));
  }
  if (ehsize != kEhdrSize)
    return err(ElfErrorKind::BadHeaderSize, fmt::format("e_ehsize is {}, not 64", ehsize));
  if (img.phentsize != kPhdrSize)
    return err(ElfErrorKind::BadHeaderSize,
               fmt::format("e_phentsize is {}, not 56", img.phentsize));
  if (img.phnum == 0) return err(ElfErrorKind::BadPhdrCount, "no program headers (e_phnum is 0)");
  if (img.phnum == kPnXnum || img.phnum * kPhdrSize > kMaxPhdrBytes)
    return err(ElfErrorKind::BadPhdrCount,
               fmt::format("{} program headers: more than the {} Linux accepts", img.phnum,
                           kMaxPhdrBytes / kPhdrSize));
  if (!in_file(img.phoff, std::uint64_t{img.phnum} * kPhdrSize, size))
    return err(
        ElfErrorKind::PhdrsOutsideFile,
        fmt::format("program headers at offset {:#x} ({} x 56 bytes) run past the end of the "
                    "{}-byte file",
                    img.phoff, img.phnum, size));

  const std::uint64_t task_size = arch_params(img.arch).task_size;
  for (unsigned i = 0; i < img.phnum; i++) {
    Phdr p = read_phdr(f, img.phoff + i * kPhdrSize);
    switch (p.type) {
      case kPtInterp: {
        std::string path;
        if (in_file(p.offset, p.filesz, size) && p.filesz > 1 && p.filesz < 4096)
          path.assign(reinterpret_cast<const char*>(f.data() + p.offset), p.filesz - 1);
        return err(ElfErrorKind::Dynamic,
                   fmt::format("dynamically linked executables are not supported (PT_INTERP "
                               "requests {}): link it with -static",
                               path.empty() ? std::string("an interpreter") : "'" + path + "'"));
      }
      case kPtLoad: {
        if (p.filesz > p.memsz)
          return err(ElfErrorKind::FileszExceedsMemsz,
                     fmt::format("PT_LOAD #{} at {:#x}: p_filesz {:#x} exceeds p_memsz {:#x}", i,
                                 p.vaddr, p.filesz, p.memsz));
        // With no file bytes (a bss-only segment) the offset is never read, as in Linux's
        // elf_load; ld may leave it past the end of the file.
        if (p.filesz && !in_file(p.offset, p.filesz, size))
          return err(
              ElfErrorKind::SegmentOutsideFile,
              fmt::format("PT_LOAD #{} at {:#x}: file bytes [{:#x}, +{:#x}) run past the end "
                          "of the {}-byte file",
                          i, p.vaddr, p.offset, p.filesz, size));
        if (!power_of_two_or_zero(p.align))
          return err(ElfErrorKind::BadAlignment,
                     fmt::format("PT_LOAD #{} at {:#x}: p_align {:#x} is not a power of two", i,
                                 p.vaddr, p.align));
        // mmap needs the file offset and the address to share their offset in the page.
        if ((p.offset ^ p.vaddr) & (PAGE_SIZE - 1))
          return err(ElfErrorKind::BadAlignment,
                     fmt::format("PT_LOAD #{}: p_vaddr {:#x} and p_offset {:#x} differ modulo the "
                                 "page size",
                                 i, p.vaddr, p.offset));
        if (p.vaddr >= task_size || p.memsz > task_size - p.vaddr)
          return err(ElfErrorKind::AddressRange,
                     fmt::format("PT_LOAD #{}: [{:#x}, +{:#x}) reaches beyond the user address "
                                 "space ({:#x})",
                                 i, p.vaddr, p.memsz, task_size));
        if (!img.loads.empty()) {
          const ElfSegment& prev = img.loads.back();
          if (p.vaddr < prev.vaddr + prev.memsz)
            return err(ElfErrorKind::BadSegmentOrder,
                       fmt::format("PT_LOAD #{} at {:#x} {} the previous one [{:#x}, {:#x})", i,
                                   p.vaddr, p.vaddr < prev.vaddr ? "comes before" : "overlaps",
                                   prev.vaddr, prev.vaddr + prev.memsz));
        }
        img.loads.push_back({p.vaddr, p.memsz, p.offset, p.filesz, p.align, p.flags});
        if (p.offset <= img.phoff && img.phoff < p.offset + p.filesz)
          img.phdr_vaddr = img.phoff - p.offset + p.vaddr;
        break;
      }
      case kPtTls:
        if (img.tls) return err(ElfErrorKind::BadTls, fmt::format("a second PT_TLS (#{})", i));
        if (p.filesz > p.memsz)
          return err(
              ElfErrorKind::BadTls,
              fmt::format("PT_TLS: p_filesz {:#x} exceeds p_memsz {:#x}", p.filesz, p.memsz));
        if (!power_of_two_or_zero(p.align))
          return err(ElfErrorKind::BadTls,
                     fmt::format("PT_TLS: p_align {:#x} is not a power of two", p.align));
        if (!in_file(p.offset, p.filesz, size))
          return err(ElfErrorKind::BadTls,
                     fmt::format("PT_TLS: file bytes [{:#x}, +{:#x}) run past the end of the file",
                                 p.offset, p.filesz));
        img.tls = ElfTls{p.vaddr, p.memsz, p.offset, p.filesz, p.align};
        break;
      case kPtGnuStack:
        img.exec_stack = (p.flags & ELF_PF_X) != 0;
        break;
      case kPtPhdr:
        img.pt_phdr = p.vaddr;
        break;
      default:
        break;
    }
  }

  if (img.loads.empty()) return err(ElfErrorKind::NoLoadSegment, "no PT_LOAD segment");
  if (img.pie && img.hi() - img.lo() > task_size)
    return err(ElfErrorKind::AddressRange, "the PT_LOAD segments span more than the address space");

  bool entry_ok = false;
  for (const auto& s : img.loads)
    if ((s.flags & ELF_PF_X) && s.vaddr <= img.entry && img.entry - s.vaddr < s.memsz)
      entry_ok = true;
  if (!entry_ok)
    return err(
        ElfErrorKind::BadEntry,
        fmt::format("entry point {:#x} is not inside an executable PT_LOAD segment", img.entry));

  // The TLS initialisation image must be loaded from the file with the program.
  if (img.tls && img.tls->filesz > 0) {
    bool inside = false;
    for (const auto& s : img.loads)
      if (s.vaddr <= img.tls->vaddr && img.tls->vaddr - s.vaddr <= s.filesz &&
          img.tls->filesz <= s.filesz - (img.tls->vaddr - s.vaddr) &&
          img.tls->offset - s.offset == img.tls->vaddr - s.vaddr)
        inside = true;
    if (!inside)
      return err(
          ElfErrorKind::BadTls,
          fmt::format("PT_TLS image [{:#x}, +{:#x}) is not inside the file bytes of a PT_LOAD",
                      img.tls->vaddr, img.tls->filesz));
  }
  return img;
}

ElfResult<std::vector<std::uint8_t>> read_executable(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return err(ElfErrorKind::Io, fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  std::streamoff n = in.tellg();
  if (n < 0) return err(ElfErrorKind::Io, fmt::format("cannot read {}", path));
  if (static_cast<std::uint64_t>(n) > kMaxFileBytes)
    return err(ElfErrorKind::Io, fmt::format("{} is larger than 4 GiB", path));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(n));
  in.seekg(0);
  if (n > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), n))
    return err(ElfErrorKind::Io, fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  return bytes;
}

}  // namespace mmemu
