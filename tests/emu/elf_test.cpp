// The ELF parser on real static binaries built by the host compilers, on synthetic files
// broken in one field at a time, and under random truncation and bit flips.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "emu/image/elf.hpp"

namespace mmemu {
namespace {

// ---- real binaries ----

// Prints what the kernel put in the auxiliary vector, so the parse can be checked against
// the host kernel's own load of the same file. The TLS variable gives it a PT_TLS.
constexpr const char* kHelloSource = R"(#include <stdio.h>
#include <sys/auxv.h>
__thread int tv = 5;
int main(int argc, char** argv) {
  printf("%lx %lx %lx\n", getauxval(AT_PHDR), getauxval(AT_PHNUM), getauxval(AT_ENTRY));
  return tv + argc == 6 ? 0 : 1;
}
)";

// Builds once per machine and user into a cache directory (renamed into place, so tests
// running in parallel never see a half-written file).
std::string build_program(const std::string& compiler, const std::string& flags,
                          const std::string& name) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("mmemu-elf-test-" + std::to_string(getuid()));
  fs::create_directories(dir);
  fs::path out = dir / name;
  if (fs::exists(out)) return out.string();
  std::string tag = std::to_string(getpid());
  fs::path src = dir / ("hello-" + tag + ".c");
  std::ofstream(src) << kHelloSource;
  fs::path tmp = dir / (name + ".tmp" + tag);
  std::string cmd = compiler + " " + flags + " -O1 -o " + tmp.string() + " " + src.string();
  int rc = std::system(cmd.c_str());
  fs::remove(src);
  if (rc != 0) return "";
  fs::rename(tmp, out);
  return out.string();
}

std::vector<std::uint8_t> read_all(const std::string& path) {
  auto bytes = read_executable(path);
  EXPECT_TRUE(bytes.has_value()) << (bytes ? "" : bytes.error().message);
  return bytes ? *bytes : std::vector<std::uint8_t>{};
}

struct Auxv {
  std::uint64_t phdr = 0, phnum = 0, entry = 0;
};
Auxv run_natively(const std::string& path) {
  Auxv a;
  FILE* p = popen(path.c_str(), "r");
  if (!p) return a;
  unsigned long phdr = 0, phnum = 0, entry = 0;
  if (std::fscanf(p, "%lx %lx %lx", &phdr, &phnum, &entry) == 3) a = {phdr, phnum, entry};
  EXPECT_EQ(pclose(p), 0);
  return a;
}

TEST(ElfReal, X86StaticMatchesTheHostKernelsLoad) {
  std::string path = build_program("gcc", "-static", "hello-x86_64-static");
  ASSERT_FALSE(path.empty()) << "gcc -static failed";
  auto bytes = read_all(path);
  auto img = parse_elf(bytes);
  ASSERT_TRUE(img.has_value()) << img.error().message;
  EXPECT_EQ(img->arch, Arch::X86_64);
  EXPECT_FALSE(img->pie);
  EXPECT_GE(img->loads.size(), 2u);
  EXPECT_EQ(img->phentsize, 56u);
  ASSERT_TRUE(img->tls.has_value());
  EXPECT_GE(img->tls->filesz, 4u);  // at least `tv`; glibc adds its own
  EXPECT_EQ(img->exec_stack, std::optional<bool>(false));
  // The kernel loaded the same file at bias 0: AT_PHDR, AT_PHNUM, AT_ENTRY agree.
  Auxv k = run_natively(path);
  ASSERT_TRUE(img->phdr_vaddr.has_value());
  EXPECT_EQ(*img->phdr_vaddr, k.phdr);
  EXPECT_EQ(img->phnum, k.phnum);
  EXPECT_EQ(img->entry, k.entry);
  // Segments: ascending, congruent with their offsets, one of them executable.
  int exec = 0;
  for (std::size_t i = 0; i < img->loads.size(); i++) {
    const auto& s = img->loads[i];
    EXPECT_EQ((s.vaddr - s.offset) % PAGE_SIZE, 0u);
    if (i) {
      EXPECT_GE(s.vaddr, img->loads[i - 1].vaddr + img->loads[i - 1].memsz);
    }
    if (s.prot() & PROT_EXEC) exec++;
  }
  EXPECT_GE(exec, 1);
  EXPECT_EQ(img->lo(), 0x400000u);
}

TEST(ElfReal, X86StaticPieIsEtDynAndMatchesTheKernelUpToTheBias) {
  std::string path = build_program("gcc", "-static-pie", "hello-x86_64-static-pie");
  ASSERT_FALSE(path.empty()) << "gcc -static-pie failed";
  auto bytes = read_all(path);
  auto img = parse_elf(bytes);
  ASSERT_TRUE(img.has_value()) << img.error().message;
  EXPECT_TRUE(img->pie);
  EXPECT_EQ(img->lo(), 0u);
  Auxv k = run_natively(path);
  ASSERT_TRUE(img->phdr_vaddr.has_value());
  std::uint64_t bias = k.entry - img->entry;
  EXPECT_EQ(bias % PAGE_SIZE, 0u);
  EXPECT_EQ(*img->phdr_vaddr + bias, k.phdr);
  EXPECT_EQ(img->phnum, k.phnum);
}

TEST(ElfReal, Arm64Static) {
  std::string path = build_program("aarch64-linux-gnu-gcc", "-static", "hello-arm64-static");
  ASSERT_FALSE(path.empty()) << "aarch64-linux-gnu-gcc -static failed";
  auto bytes = read_all(path);
  auto img = parse_elf(bytes);
  ASSERT_TRUE(img.has_value()) << img.error().message;
  EXPECT_EQ(img->arch, Arch::Arm64);
  EXPECT_FALSE(img->pie);
  EXPECT_GE(img->loads.size(), 2u);
  ASSERT_TRUE(img->tls.has_value());
  ASSERT_TRUE(img->phdr_vaddr.has_value());
  // The first PT_LOAD starts at file offset 0, so the headers are loaded right after it.
  EXPECT_EQ(img->loads.front().offset, 0u);
  EXPECT_EQ(*img->phdr_vaddr, img->loads.front().vaddr + img->phoff);
  EXPECT_TRUE(img->loads.front().prot() & PROT_EXEC);
}

TEST(ElfReal, DynamicExecutableIsRejectedByName) {
  std::string path = build_program("gcc", "", "hello-x86_64-dynamic");
  ASSERT_FALSE(path.empty());
  auto bytes = read_all(path);
  auto img = parse_elf(bytes);
  ASSERT_FALSE(img.has_value());
  EXPECT_EQ(img.error().kind, ElfErrorKind::Dynamic);
  EXPECT_EQ(img.error().errno_code(), ENOEXEC);
  EXPECT_NE(img.error().message.find("dynamically linked executables are not supported"),
            std::string::npos);
  EXPECT_NE(img.error().message.find("ld-linux-x86-64.so.2"), std::string::npos)
      << img.error().message;
}

TEST(ElfReal, MissingFileIsAnIoError) {
  auto r = read_executable("/nonexistent/mmemu-no-such-file");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ElfErrorKind::Io);
  EXPECT_EQ(r.error().errno_code(), EIO);
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos);
}

// ---- synthetic files, one field broken at a time ----

struct Ph {
  std::uint32_t type, flags;
  std::uint64_t offset, vaddr, filesz, memsz, align;
};

// A small valid static executable image: R headers, RX text, RW data+bss with TLS.
struct FakeElf {
  std::uint8_t cls = 2, data = 1, ident_version = 1;
  std::uint16_t type = 2, machine = 62, ehsize = 64, phentsize = 56;
  std::uint32_t version = 1;
  std::uint64_t entry = 0x401010, phoff = 64;
  std::optional<std::uint16_t> phnum;  // default: ph.size()
  std::size_t file_size = 0x3000;
  std::vector<Ph> ph = {
      {1, ELF_PF_R, 0, 0x400000, 0x1000, 0x1000, 0x1000},
      {1, ELF_PF_R | ELF_PF_X, 0x1000, 0x401000, 0x1000, 0x1000, 0x1000},
      {1, ELF_PF_R | ELF_PF_W, 0x2000, 0x402000, 0x800, 0x3000, 0x1000},
      {7, ELF_PF_R, 0x2000, 0x402000, 0x10, 0x40, 8},
      {0x6474e551, ELF_PF_R | ELF_PF_W, 0, 0, 0, 0, 16},
  };

  std::vector<std::uint8_t> bytes() const {
    std::vector<std::uint8_t> b(std::max<std::size_t>(file_size, 64 + ph.size() * 56));
    auto put = [&](std::size_t at, std::uint64_t v, unsigned n) {
      for (unsigned i = 0; i < n; i++)
        b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
    };
    b[0] = 0x7f, b[1] = 'E', b[2] = 'L', b[3] = 'F', b[4] = cls, b[5] = data, b[6] = ident_version;
    put(16, type, 2), put(18, machine, 2), put(20, version, 4), put(24, entry, 8);
    put(32, phoff, 8), put(52, ehsize, 2), put(54, phentsize, 2);
    put(56, phnum.value_or(static_cast<std::uint16_t>(ph.size())), 2);
    for (std::size_t i = 0; i < ph.size(); i++) {
      std::size_t at = phoff + i * 56;
      if (phoff > b.size() || at > b.size() - 56) break;
      put(at, ph[i].type, 4), put(at + 4, ph[i].flags, 4), put(at + 8, ph[i].offset, 8);
      put(at + 16, ph[i].vaddr, 8), put(at + 24, ph[i].vaddr, 8), put(at + 32, ph[i].filesz, 8);
      put(at + 40, ph[i].memsz, 8), put(at + 48, ph[i].align, 8);
    }
    b.resize(file_size);
    return b;
  }
};

ElfErrorKind kind_of(const FakeElf& e, std::string* msg = nullptr) {
  auto b = e.bytes();
  auto r = parse_elf(b);
  if (r.has_value()) {
    ADD_FAILURE() << "parsed a file expected to be rejected";
    return ElfErrorKind::Io;
  }
  if (msg) *msg = r.error().message;
  return r.error().kind;
}

TEST(ElfSynthetic, TheBaseFileIsValid) {
  FakeElf e;
  auto b = e.bytes();
  auto img = parse_elf(b);
  ASSERT_TRUE(img.has_value()) << img.error().message;
  EXPECT_EQ(img->loads.size(), 3u);
  EXPECT_EQ(img->loads[2],
            (ElfSegment{0x402000, 0x3000, 0x2000, 0x800, 0x1000, ELF_PF_R | ELF_PF_W}));
  EXPECT_EQ(img->loads[2].prot(), PROT_READ | PROT_WRITE);
  EXPECT_EQ(img->tls, (ElfTls{0x402000, 0x40, 0x2000, 0x10, 8}));
  EXPECT_EQ(img->phdr_vaddr, std::optional<std::uint64_t>(0x400040));
  EXPECT_EQ(img->pt_phdr, std::nullopt);
  EXPECT_EQ(img->exec_stack, std::optional<bool>(false));
  EXPECT_EQ(img->lo(), 0x400000u);
  EXPECT_EQ(img->hi(), 0x405000u);
  e.machine = 183;
  b = e.bytes();
  ASSERT_TRUE(parse_elf(b).has_value());
  EXPECT_EQ(parse_elf(b)->arch, Arch::Arm64);
}

TEST(ElfSynthetic, HeaderErrors) {
  std::string msg;
  {
    std::vector<std::uint8_t> none;
    EXPECT_EQ(parse_elf(none).error().kind, ElfErrorKind::Truncated);
    std::vector<std::uint8_t> text = {'#', '!', '/', 'b', 'i', 'n'};
    EXPECT_EQ(parse_elf(text).error().kind, ElfErrorKind::BadMagic);
  }
  FakeElf e;
  e.file_size = 40;
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::Truncated);
  EXPECT_NE(msg.find("40 bytes"), std::string::npos) << msg;
  e = {};
  e.cls = 1;
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadClass);
  EXPECT_NE(msg.find("64-bit"), std::string::npos) << msg;
  e = {};
  e.data = 2;
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadEndianness);
  e = {};
  e.ident_version = 0;
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadVersion);
  e = {};
  e.version = 2;
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadVersion);
  e = {};
  e.type = 1;
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadType);
  EXPECT_NE(msg.find("ET_REL"), std::string::npos) << msg;
  e.type = 4;
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadType);
  EXPECT_NE(msg.find("core"), std::string::npos) << msg;
  e = {};
  e.machine = 40;
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadMachine);
  EXPECT_NE(msg.find("EM_ARM"), std::string::npos) << msg;
  e = {};
  e.ehsize = 52;
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadHeaderSize);
  e = {};
  e.phentsize = 32;
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadHeaderSize);
}

TEST(ElfSynthetic, ProgramHeaderTableErrors) {
  std::string msg;
  FakeElf e;
  e.phnum = 0;
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadPhdrCount);
  e.phnum = 74;  // 74 * 56 > 4096
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadPhdrCount);
  EXPECT_NE(msg.find("73"), std::string::npos) << msg;
  e.phnum = 0xffff;
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadPhdrCount);
  e = {};
  e.phoff = 0x2ff0;
  EXPECT_EQ(kind_of(e), ElfErrorKind::PhdrsOutsideFile);
  e.phoff = ~0ULL - 8;  // offset + size wraps
  EXPECT_EQ(kind_of(e), ElfErrorKind::PhdrsOutsideFile);
  e = {};
  e.ph.clear();
  e.ph.push_back({0x6474e551, 6, 0, 0, 0, 0, 16});
  EXPECT_EQ(kind_of(e), ElfErrorKind::NoLoadSegment);
}

TEST(ElfSynthetic, SegmentErrors) {
  std::string msg;
  FakeElf e;
  e.ph[2].filesz = 0x4000;  // > memsz 0x3000
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::FileszExceedsMemsz);
  EXPECT_NE(msg.find("PT_LOAD #2"), std::string::npos) << msg;
  e = {};
  e.ph[2].filesz = 0x1800;  // past the end of the 0x3000-byte file
  EXPECT_EQ(kind_of(e), ElfErrorKind::SegmentOutsideFile);
  e = {};
  e.ph[1].offset = ~0ULL - 0x10;  // wraps
  EXPECT_EQ(kind_of(e), ElfErrorKind::SegmentOutsideFile);
  {
    // A bss-only segment (no file bytes) whose offset lies past the end: ld makes these.
    FakeElf z;
    z.ph.push_back({1, 6, 0x7000, 0x407000, 0, 0x1000, 0x1000});
    auto b = z.bytes();
    auto img = parse_elf(b);
    ASSERT_TRUE(img.has_value()) << img.error().message;
    EXPECT_EQ(img->loads.back(),
              (ElfSegment{0x407000, 0x1000, 0x7000, 0, 0x1000, ELF_PF_R | ELF_PF_W}));
  }
  e = {};
  e.ph[1].align = 0x1800;
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadAlignment);
  EXPECT_NE(msg.find("power of two"), std::string::npos) << msg;
  e = {};
  e.ph[1].offset = 0x1008;  // vaddr 0x401000: not congruent
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadAlignment);
  EXPECT_NE(msg.find("modulo the page size"), std::string::npos) << msg;
  e = {};
  e.ph[1].vaddr = 0x400800, e.ph[1].offset = 0x800;  // overlaps #0
  e.entry = 0x400810;
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadSegmentOrder);
  EXPECT_NE(msg.find("overlaps"), std::string::npos) << msg;
  e = {};
  std::swap(e.ph[0], e.ph[1]);
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadSegmentOrder);
  EXPECT_NE(msg.find("comes before"), std::string::npos) << msg;
  e = {};
  e.ph[2].vaddr = (1ULL << 47) - 0x2000, e.ph[2].offset = 0x2000;
  EXPECT_EQ(kind_of(e), ElfErrorKind::AddressRange);
  e.ph[2].vaddr = 0xfffffffffffff000ULL;
  EXPECT_EQ(kind_of(e), ElfErrorKind::AddressRange);
  {
    FakeElf a;
    a.machine = 183;  // arm64's TASK_SIZE is larger: the same address is fine there
    a.ph[2].vaddr = a.ph[3].vaddr = (1ULL << 47) - 0x2000;
    auto b = a.bytes();
    EXPECT_TRUE(parse_elf(b).has_value());
  }
  // Adjacent segments may share a page (Linux maps both, the later one wins the page).
  e = {};
  e.ph[1].filesz = e.ph[1].memsz = 0x900;
  e.ph[2].vaddr = 0x401c00, e.ph[2].offset = 0x1c00;
  e.ph[3].vaddr = 0x401c00, e.ph[3].offset = 0x1c00;
  auto b = e.bytes();
  EXPECT_TRUE(parse_elf(b).has_value());
}

TEST(ElfSynthetic, EntryTlsAndInterp) {
  std::string msg;
  FakeElf e;
  e.entry = 0x400010;  // in the non-executable header segment
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadEntry);
  EXPECT_NE(msg.find("0x400010"), std::string::npos) << msg;
  e.entry = 0x500000;
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadEntry);
  e = {};
  e.ph.push_back(e.ph[3]);
  EXPECT_EQ(kind_of(e, &msg), ElfErrorKind::BadTls);
  EXPECT_NE(msg.find("second PT_TLS"), std::string::npos) << msg;
  e = {};
  e.ph[3].filesz = 0x100;  // > memsz
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadTls);
  e = {};
  e.ph[3].align = 12;
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadTls);
  e = {};
  e.ph[3].vaddr = 0x402c00, e.ph[3].offset = 0x2c00;  // image beyond the loaded file bytes
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadTls);
  e = {};
  e.ph[2].type = 0;  // no PT_LOAD holds the TLS image any more
  EXPECT_EQ(kind_of(e), ElfErrorKind::BadTls);
  // PT_INTERP names the interpreter in the message.
  e = {};
  const char interp[] = "/lib/ld-linux-aarch64.so.1";
  e.ph.insert(e.ph.begin(), Ph{3, ELF_PF_R, 0x200, 0x400200, sizeof interp, sizeof interp, 1});
  auto b = e.bytes();
  std::memcpy(b.data() + 0x200, interp, sizeof interp);
  auto r = parse_elf(b);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ElfErrorKind::Dynamic);
  EXPECT_NE(r.error().message.find("'/lib/ld-linux-aarch64.so.1'"), std::string::npos)
      << r.error().message;
  // PT_GNU_STACK with PF_X, PT_PHDR, and ET_DYN.
  e = {};
  e.ph[4].flags |= ELF_PF_X;
  e.ph.push_back({6, ELF_PF_R, 64, 0x400040, 5 * 56, 5 * 56, 8});
  e.type = 3;
  b = e.bytes();
  auto img = parse_elf(b);
  ASSERT_TRUE(img.has_value()) << img.error().message;
  EXPECT_EQ(img->exec_stack, std::optional<bool>(true));
  EXPECT_EQ(img->pt_phdr, std::optional<std::uint64_t>(0x400040));
  EXPECT_TRUE(img->pie);
  e.ph.erase(e.ph.begin() + 4);
  b = e.bytes();
  EXPECT_EQ(parse_elf(b)->exec_stack, std::nullopt);
  // No PT_LOAD covers e_phoff: AT_PHDR has nothing to point at.
  e = {};
  e.ph[0].offset = 0x1000, e.ph[0].filesz = 0, e.ph[0].memsz = 0x1000;
  b = e.bytes();
  ASSERT_TRUE(parse_elf(b).has_value());
  EXPECT_EQ(parse_elf(b)->phdr_vaddr, std::nullopt);
}

// ---- fuzzing: never crash, always a value or a named error ----

void expect_no_crash(std::span<const std::uint8_t> b) {
  auto r = parse_elf(b);
  if (!r) {
    EXPECT_FALSE(r.error().message.empty());
    EXPECT_NE(elf_error_name(r.error().kind), "?");
  } else {
    EXPECT_FALSE(r->loads.empty());
  }
}

TEST(ElfFuzz, TruncationsAndBitFlipsOfARealBinary) {
  std::string path = build_program("gcc", "-static", "hello-x86_64-static");
  ASSERT_FALSE(path.empty());
  const auto orig = read_all(path);
  ASSERT_GT(orig.size(), 8192u);
  // Every length through the headers, then random ones. Each copy is exactly as long as
  // the truncated file, so ASan catches any read past its end.
  for (std::size_t n = 0; n < 4096; n++) {
    std::vector<std::uint8_t> cut(orig.begin(), orig.begin() + static_cast<std::ptrdiff_t>(n));
    expect_no_crash(cut);
  }
  std::mt19937_64 rng(20240601);
  int accepted = 0;
  for (int i = 0; i < 3000; i++) {
    std::vector<std::uint8_t> b = orig;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int j = 0; j < flips; j++) {
      // Mostly within the ELF and program headers, where every byte matters.
      std::size_t at = rng() % 4 ? rng() % 640 : rng() % b.size();
      b[at] ^= static_cast<std::uint8_t>(1U << (rng() % 8));
    }
    if (rng() % 4 == 0) b.resize(rng() % b.size());
    expect_no_crash(b);
    accepted += parse_elf(b).has_value();
  }
  // Some flips hit don't-care bits, most break something: both paths are exercised.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, 3000);
}

}  // namespace
}  // namespace mmemu
