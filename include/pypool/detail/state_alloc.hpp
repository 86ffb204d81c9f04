#pragma once
// Internal: the memory of result states (one per apply_async/submit task, map or imap
// chunk). A state is freed by whichever thread drops its last reference, usually not the
// one that allocated it, which defeats malloc's per-thread caches: every task then took a
// locked path through malloc and, on a fresh heap, first-touch page faults. States are
// recycled instead through per-thread magazines of same-size blocks, exchanged whole
// through a small global depot (src/state_alloc.cpp).

#include <cstddef>

namespace pypool::detail {

/// A block for a state of `size` bytes (aligned like max_align_t); throws std::bad_alloc.
void* state_alloc(std::size_t size);
/// Gives back a block of state_alloc(size).
void state_free(void* p, std::size_t size) noexcept;

}  // namespace pypool::detail
