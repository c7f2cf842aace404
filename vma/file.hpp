// A mappable file with its own page cache: the guest's executable, a host file the guest
// opened read-only, or the shmem object behind a shared anonymous mapping. Page-cache
// frames come from the `page` allocation site and are freed when the last reference to the
// file goes (fput), so a file left open at exit shows up as leaked frames.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mmu/machine.hpp"

namespace mmemu {

struct Vma;

class File {
 public:
  // A regular file with these contents. `name` is what /proc/PID/maps shows.
  static File* create(Machine& m, std::string name, std::vector<std::uint8_t> data,
                      bool readable = true, bool writable = false, std::uint64_t dev = 0x801,
                      std::uint64_t ino = 0);
  // The shmem object of a MAP_SHARED|MAP_ANONYMOUS mapping of `size` bytes.
  static File* create_shmem(Machine& m, std::uint64_t size);
  // An empty shmem file named `name` in /proc/PID/maps ("/memfd:x (deleted)"), whose size
  // and contents change through vma/shmem.hpp (memfd_create).
  static File* create_shmem_file(Machine& m, std::string name, unsigned seals,
                                 std::uint64_t dev = 0x1);

  void get() { ++refcount_; }  // get_file
  void put();                  // fput: the last put frees the page cache and the file

  // The page-cache frame holding page `index`, read in (or zero-filled past the end, or for
  // shmem) on first use. ENOMEM from the page site.
  Result<pfn_t> find_or_read_page(std::uint64_t index);
  pfn_t cached_page(std::uint64_t index) const;  // 0 if not cached
  // Drops the cached page at `index` if nothing maps it (used by reclaim/truncation tests).
  bool evict(std::uint64_t index);
  // Truncation: takes every cached page at or past `index` out of the cache, whoever still
  // holds a reference (a pinned page lives on, detached, until its last put).
  void remove_pages_from(std::uint64_t index);
  void set_size(std::uint64_t size) { size_ = size; }
  // memfd seals (F_SEAL_*); a shmem file that does not allow sealing has F_SEAL_SEAL.
  unsigned seals() const { return seals_; }
  void set_seals(unsigned s) { seals_ = s; }

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }  // rename, unlink
  std::uint64_t size() const { return size_; }
  // Pages up to the end of the file, the last partial one included.
  std::uint64_t nr_pages() const { return (size_ + PAGE_SIZE - 1) >> PAGE_SHIFT; }
  std::uint64_t dev() const { return dev_; }
  std::uint64_t ino() const { return ino_; }
  void set_ino(std::uint64_t ino) { ino_ = ino; }  // a SysV segment's inode is its id
  bool readable() const { return readable_; }
  bool writable() const { return writable_; }
  bool shmem() const { return shmem_; }
  int refcount() const { return refcount_; }
  Machine& machine() const { return *m_; }
  const std::vector<std::uint8_t>& data() const { return data_; }
  const std::map<std::uint64_t, pfn_t>& page_cache() const { return pages_; }

  // i_mmap: the VMAs mapping this file, for rmap walks.
  std::vector<Vma*> i_mmap;

 private:
  File(Machine& m) : m_(&m) {}
  ~File() = default;
  Machine* m_;
  std::string name_;
  std::vector<std::uint8_t> data_;
  std::uint64_t size_ = 0;
  std::uint64_t dev_ = 0;
  std::uint64_t ino_ = 0;
  bool readable_ = true;
  bool writable_ = false;
  bool shmem_ = false;
  unsigned seals_ = 0;
  int refcount_ = 1;
  std::map<std::uint64_t, pfn_t> pages_;
};

}  // namespace mmemu
