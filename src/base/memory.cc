#include "base/memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <new>

namespace flow {

std::unique_ptr<HugePages> HugePages::Map(size_t bytes) {
  size_t size = (bytes + kPage - 1) / kPage * kPage;
  if (size == 0) return nullptr;
  // Mapped one page larger, then trimmed to a 2 MiB boundary at both ends.
  size_t mapped = size + kPage;
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto begin = reinterpret_cast<uintptr_t>(p);
  uintptr_t aligned = (begin + kPage - 1) / kPage * kPage;
  if (aligned > begin) ::munmap(p, aligned - begin);
  uintptr_t end = begin + mapped, aligned_end = aligned + size;
  if (end > aligned_end) ::munmap(reinterpret_cast<void*>(aligned_end), end - aligned_end);
  // Advice only: without transparent huge pages the region is ordinary memory.
  ::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
  std::unique_ptr<HugePages> out(new (std::nothrow)
                                     HugePages(reinterpret_cast<void*>(aligned), size));
  if (!out) ::munmap(reinterpret_cast<void*>(aligned), size);
  return out;
}

HugePages::~HugePages() { ::munmap(data_, size_); }

void HugePages::Release(size_t keep) {
  size_t from = (keep + kPage - 1) / kPage * kPage;
  if (from < size_) ::madvise(static_cast<char*>(data_) + from, size_ - from, MADV_DONTNEED);
}

}  // namespace flow
