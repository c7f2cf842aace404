#include "vma/file.hpp"

#include <algorithm>
#include <cstring>

namespace mmemu {

namespace {
std::uint64_t next_ino = 1000;
}

File* File::create(Machine& m, std::string name, std::vector<std::uint8_t> data, bool readable,
                   bool writable, std::uint64_t dev, std::uint64_t ino) {
  File* f = new File(m);
  f->name_ = std::move(name);
  f->size_ = data.size();
  f->data_ = std::move(data);
  f->readable_ = readable;
  f->writable_ = writable;
  f->dev_ = dev;
  f->ino_ = ino ? ino : next_ino++;
  return f;
}

File* File::create_shmem(Machine& m, std::uint64_t size) {
  File* f = new File(m);
  f->name_ = "/dev/zero (deleted)";
  f->size_ = size;
  f->shmem_ = true;
  f->writable_ = true;
  f->dev_ = 0x1;
  f->ino_ = next_ino++;
  return f;
}

File* File::create_shmem_file(Machine& m, std::string name, unsigned seals, std::uint64_t dev) {
  File* f = create_shmem(m, 0);
  f->name_ = std::move(name);
  f->seals_ = seals;
  f->dev_ = dev;
  return f;
}

void File::remove_pages_from(std::uint64_t index) {
  for (auto it = pages_.lower_bound(index); it != pages_.end();) {
    PageDesc& d = m_->phys.desc(it->second);
    d.flags &= ~PG_pagecache;
    d.mapping = nullptr;
    m_->phys.put_page(it->second);
    it = pages_.erase(it);
  }
}

void File::put() {
  if (--refcount_ > 0) return;
  for (auto& [idx, pfn] : pages_)
    m_->phys.put_page(pfn);
  delete this;
}

Result<pfn_t> File::find_or_read_page(std::uint64_t index) {
  if (auto it = pages_.find(index); it != pages_.end()) return it->second;
  const AllocCaller caller(m_->inject, shmem_ ? "shmem_alloc_folio" : "filemap_alloc_folio");
  auto pfn = m_->phys.alloc_frame(AllocSite::Page);
  if (!pfn) return pfn;
  const std::uint64_t off = index << PAGE_SHIFT;
  if (!shmem_ && off < data_.size()) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(PAGE_SIZE, data_.size() - off));
    std::memcpy(m_->phys.frame(*pfn), data_.data() + off, n);
  }
  PageDesc& d = m_->phys.desc(*pfn);
  d.flags |= PG_pagecache;
  d.mapping = this;
  d.index = index;
  pages_.emplace(index, *pfn);
  return *pfn;
}

pfn_t File::cached_page(std::uint64_t index) const {
  auto it = pages_.find(index);
  return it == pages_.end() ? 0 : it->second;
}

bool File::evict(std::uint64_t index) {
  auto it = pages_.find(index);
  if (it == pages_.end()) return false;
  const PageDesc& d = m_->phys.desc(it->second);
  if (d.mapcount > 0 || d.refcount > 1) return false;
  m_->phys.put_page(it->second);
  pages_.erase(it);
  return true;
}

}  // namespace mmemu
