#pragma once
// Internal: a set of distinct pointers, by which wait/as_completed drop repeated results
// without a heap node per element (open addressing, linear probing).

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pypool::detail {

/// A set of non-null pointers; grows by doubling, never past half full.
class PointerSet {
public:
    /// Room for `expected` pointers before the first growth. Throws std::bad_alloc.
    explicit PointerSet(std::size_t expected = 0) : slots_(capacity_for(expected), nullptr) {}

    /// Inserts p (not null); true if p was not in the set yet. Throws std::bad_alloc.
    bool insert(const void* p) {
        if (2 * (size_ + 1) > slots_.size()) grow();
        if (!place(slots_, p)) return false;
        ++size_;
        return true;
    }

private:
    static std::size_t capacity_for(std::size_t n) { return std::bit_ceil(2 * n + 16); }

    // Fibonacci hashing of the address (its low bits are alignment); true if p was added.
    static bool place(std::vector<const void*>& slots, const void* p) noexcept {
        const std::size_t mask = slots.size() - 1;
        std::size_t i = static_cast<std::size_t>(
                            (reinterpret_cast<std::uintptr_t>(p) >> 4) * 0x9E3779B97F4A7C15ULL) &
                        mask;
        while (slots[i]) {
            if (slots[i] == p) return false;
            i = (i + 1) & mask;
        }
        slots[i] = p;
        return true;
    }

    void grow() {
        std::vector<const void*> bigger(slots_.size() * 2, nullptr);
        for (const void* p : slots_)
            if (p) place(bigger, p);
        slots_.swap(bigger);
    }

    std::vector<const void*> slots_;
    std::size_t size_ = 0;
};

}  // namespace pypool::detail
