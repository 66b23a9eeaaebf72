// Large anonymous memory that the kernel is asked to back with transparent huge pages.
#pragma once

#include <cstddef>
#include <memory>

namespace flow {

// A region of zeroed memory, aligned to 2 MiB and advised MADV_HUGEPAGE: where the kernel
// allows it (transparent_hugepage "madvise" or "always"), each 2 MiB is faulted in at
// once instead of 512 times (on a virtual machine a fault of a 4 KiB page costs about
// 5 µs). Pages are only backed as they are touched. Unmapped when destroyed.
class HugePages {
 public:
  static constexpr size_t kPage = 2u << 20;
  // `bytes` rounded up to kPage; null when the memory cannot be mapped.
  static std::unique_ptr<HugePages> Map(size_t bytes);
  ~HugePages();
  HugePages(const HugePages&) = delete;
  HugePages& operator=(const HugePages&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  // Gives the pages past the first `keep` bytes (rounded up to kPage) back to the kernel:
  // they read as zeros again, and are backed again when touched.
  void Release(size_t keep);

 private:
  HugePages(void* data, size_t size) : data_(data), size_(size) {}
  void* data_;
  size_t size_;
};

}  // namespace flow
