#pragma once
// Shared by the tests: a value that counts its live instances, so that a test sees a task's
// arguments or callable leak (the count stays above 0) or be destroyed twice (below 0).
#include <atomic>

/// Counts its live instances (copies and moves included); one count per Tag. Serializable
/// (empty), so it also crosses to a ProcessPool worker.
template <int Tag>
struct Live {
    static inline std::atomic<int> count{0};
    Live() { ++count; }
    Live(const Live&) { ++count; }
    Live(Live&&) noexcept { ++count; }
    Live& operator=(const Live&) = default;
    ~Live() { --count; }
    template <class Archive>
    void serialize(Archive&) {}
};
