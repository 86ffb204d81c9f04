#pragma once
// Shared by the tests that check a pool leaves no thread behind: counting this process's
// threads through /proc/self/task.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <iterator>
#include <thread>

namespace test_threads {

/// Threads of this process (/proc/self/task).
inline std::size_t thread_count() {
    namespace fs = std::filesystem;
    return static_cast<std::size_t>(
        std::distance(fs::directory_iterator("/proc/self/task"), fs::directory_iterator{}));
}

/// Threads of this process once no more than `at_most` (polled, at most 10 s): a joined
/// thread can stay listed in /proc/self/task for a moment after join() returned, until the
/// kernel reaps it. A baseline taken at a test's start may still count one of the previous
/// test's threads, so tests check "no more threads than before", never "exactly as many".
inline std::size_t thread_count_settled(std::size_t at_most) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::size_t n = thread_count();
    while (n > at_most && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
        n = thread_count();
    }
    return n;
}

}  // namespace test_threads
