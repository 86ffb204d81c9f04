#pragma once
// Internal: brief spinning before a thread parks. On a busy pool the awaited event usually
// comes sooner than a futex sleep and wake-up (10-20 us); the yields give the core to the
// thread that will produce it when cores are scarce.

#include <thread>

namespace pypool::detail {

/// A CPU hint that the caller busy-waits.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

/// Polls done() up to `pauses` times with a pause between, then up to `yields` times with a
/// yield between; true as soon as done() is true, false if it never was.
template <class Done>
bool spin_until(Done&& done, int pauses = 256, int yields = 16) noexcept {
    for (int i = 0; i < pauses; ++i) {
        if (done()) return true;
        cpu_relax();
    }
    for (int i = 0; i < yields; ++i) {
        if (done()) return true;
        std::this_thread::yield();
    }
    return done();
}

}  // namespace pypool::detail
