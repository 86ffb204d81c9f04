#pragma once
// Internal: one waiter over many results (pypool::wait, pypool::as_completed). It links a
// CompletionListener into every unfinished state and records states in the order they
// become ready; no polling. Implemented in src/futures.cpp.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <pypool/detail/state.hpp>

namespace pypool::detail {

class PoolCore;

/// Records, in completion order, the indices of a fixed set of distinct states as they
/// become ready.
class MultiWait {
public:
    /// Registers on the unfinished states; the states ready already are recorded first,
    /// in input order. Throws std::bad_alloc (then nothing stays registered). The caller
    /// keeps each state alive until the waiter is destroyed or the state was recorded.
    explicit MultiWait(std::vector<StateBase*> states);
    /// Unregisters from every state (waits out a notification in progress). The states
    /// recorded as ready may already be gone: they are not touched.
    ~MultiWait();
    MultiWait(const MultiWait&) = delete;
    MultiWait& operator=(const MultiWait&) = delete;

    /// Number of states.
    std::size_t size() const noexcept { return states_.size(); }
    /// How many states have been recorded as ready so far.
    std::size_t ready_count() const noexcept { return count_.load(std::memory_order_acquire); }
    /// Index (into the input) of the k-th state to become ready; k < ready_count().
    std::size_t ready_at(std::size_t k) const noexcept { return order_[k]; }
    /// Blocks until ready_count() > seen or the deadline passes (none: no deadline; one
    /// already past only checks); returns ready_count(). On a pool thread it runs nothing
    /// meanwhile; a spare thread keeps that pool's parallelism. Throws DeadlockError where
    /// it would block on a pool's callback thread while an unfinished state needs that
    /// thread (it has a callback or error_callback).
    std::size_t wait_beyond(std::size_t seen, std::optional<Clock::time_point> deadline);

private:
    struct Node : CompletionListener {
        MultiWait* owner = nullptr;
        std::size_t index = 0;
        bool registered = false;  // touched only by the owner's constructor and destructor
    };
    static void on_notify(CompletionListener* l) noexcept;
    void record(std::size_t index, bool wake) noexcept;
    void check_deadlock();

    std::vector<StateBase*> states_;
    std::unique_ptr<Node[]> nodes_;
    std::unique_ptr<std::size_t[]> order_;  // written under m_, published by count_
    std::unique_ptr<bool[]> recorded_;      // by index, guarded by m_
    std::atomic<std::size_t> count_{0};
    std::vector<PoolCore*> pools_;  // distinct pools of the states unfinished at the start
    std::mutex m_;
    std::condition_variable cv_;
};

}  // namespace pypool::detail
