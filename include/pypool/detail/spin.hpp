#pragma once
// Internal: brief spinning before a thread parks. On a busy pool the awaited event usually
// comes sooner than a futex sleep and wake-up (10-20 us); the yields give the core to the
// thread that will produce it when cores are scarce.
//
// The spin adapts per thread. Yielding pays off only when the threads it hands the core to
// are the pool's own, which give it back within microseconds. When a yield comes back late
// (another program's busy threads took the core for a scheduler slice, milliseconds) or
// spins keep ending with nothing, the thread skips the yields and spins only briefly for
// its next calls, so it parks and is woken instead: a woken thread gets the core back
// promptly, a yielding one waits behind the busy threads. Every `skip_calls` calls it tries
// the full spin again.

#include <atomic>
#include <chrono>
#include <cstdint>
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

/// A lock for critical sections of a few loads and stores (the job queues): spins, then
/// yields (the holder was preempted). It never sleeps in the kernel, so a contended
/// hand-off costs a cache-line transfer, not a futex wait and wake-up.
class SpinLock {
public:
    /// Takes the lock.
    void lock() noexcept {
        int spins = 0;
        while (locked_.exchange(true, std::memory_order_acquire)) {
            while (locked_.load(std::memory_order_relaxed)) {
                if (++spins < 64)
                    cpu_relax();
                else
                    std::this_thread::yield();  // the holder was preempted
            }
        }
    }
    /// Releases the lock.
    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
    std::atomic<bool> locked_{false};
};

/// How spinning has paid off on this thread lately (see the header comment).
struct SpinGauge {
    static constexpr std::uint32_t skip_calls = 64;  ///< calls spent spinning briefly
    static constexpr std::uint32_t max_misses = 4;   ///< fruitless full spins before skipping
    /// A yield that returns later than this gave the core to another program's thread.
    static constexpr std::chrono::microseconds late_yield{200};
    std::uint32_t skip = 0;    ///< calls left that spin briefly, without yields
    std::uint32_t misses = 0;  ///< consecutive full spins that ended with nothing
};

/// This thread's gauge.
inline SpinGauge& spin_gauge() noexcept {
    static thread_local SpinGauge gauge;
    return gauge;
}

/// Polls done() up to `pauses` times with a pause between, then up to `yields` times with a
/// yield between; true as soon as done() is true, false if it never was. Adaptive: on a
/// thread whose recent yields came back late or whose spins found nothing, polls only
/// pauses / 8 times, without yields.
template <class Done>
bool spin_until(Done&& done, int pauses = 256, int yields = 16) noexcept {
    SpinGauge& g = spin_gauge();
    if (g.skip > 0) {
        --g.skip;
        for (int i = 0, n = pauses / 8; i < n; ++i) {
            if (done()) return true;
            cpu_relax();
        }
        return done();
    }
    for (int i = 0; i < pauses; ++i) {
        if (done()) {
            g.misses = 0;
            return true;
        }
        cpu_relax();
    }
    using Clock = std::chrono::steady_clock;
    for (int i = 0; i < yields; ++i) {
        if (done()) {
            g.misses = 0;
            return true;
        }
        const auto t0 = Clock::now();
        std::this_thread::yield();
        if (Clock::now() - t0 > SpinGauge::late_yield) {
            // The core went to someone else's thread for a slice: stop yielding for a while.
            g.skip = SpinGauge::skip_calls;
            g.misses = 0;
            return done();
        }
    }
    if (done()) {
        g.misses = 0;
        return true;
    }
    if (++g.misses >= SpinGauge::max_misses) {
        g.skip = SpinGauge::skip_calls;
        g.misses = 0;
    }
    return false;
}

}  // namespace pypool::detail
