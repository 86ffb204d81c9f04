// The shared state of a result: completion, cancellation, waiting, done callbacks.
#include <array>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <vector>

#include <pypool/detail/pool_core.hpp>
#include <pypool/detail/spin.hpp>
#include <pypool/detail/state.hpp>
#include <pypool/errors.hpp>

#include "registry.hpp"

namespace pypool::detail {
namespace {

// Threads that block on a result park on one of these stripes, chosen by address. A
// completer takes the stripe's lock only when flag_waiters says someone parks.
struct Stripe {
    std::mutex m;
    std::condition_variable cv;
};
std::array<Stripe, 64>& stripes() {
    static std::array<Stripe, 64> s;
    return s;
}
Stripe& stripe_for(const void* p) {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    return stripes()[(a >> 6U) % 64U];
}

// Replaces phase and outcome, keeping the flags; returns the new word.
std::uint32_t set_phase_outcome(std::atomic<std::uint32_t>& word, std::uint32_t phase,
                                std::uint32_t outcome) noexcept {
    std::uint32_t w = word.load(std::memory_order_relaxed);
    std::uint32_t nw = 0;
    do {
        nw = (w & ~(phase_mask | outcome_mask)) | phase | outcome;
    } while (!word.compare_exchange_weak(w, nw, std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
    return nw;
}

// Counts the outcome in the state word w in the pool's stats (a cancellation was counted
// when it happened; an empty map is no task).
void count_outcome(PoolCore* pool, std::uint32_t w) noexcept {
    if ((w & outcome_mask) != outcome_cancelled && (w & flag_uncounted) == 0)
        pool->note_outcome((w & outcome_mask) == outcome_value);
}

// The done callbacks of a state that is not ready yet: one node in the state's listener
// list (recognised by its notify, which make_ready() never calls), so that the common state
// has no field of its own for them.
struct DoneCallbacks final : CompletionListener {
    static void marker(CompletionListener*) noexcept {}
    DoneCallbacks() noexcept { notify = &marker; }
    std::vector<Function<void()>> fns;
};
DoneCallbacks* as_done_callbacks(CompletionListener* l) noexcept {
    return l->notify == &DoneCallbacks::marker ? static_cast<DoneCallbacks*>(l) : nullptr;
}

}  // namespace

StateBase::~StateBase() {
    // Only a done-callback node can still be linked: a listener's owner unlinks it first.
    for (CompletionListener* l = listeners_; l;) {
        CompletionListener* next = l->listener_next_;
        delete as_done_callbacks(l);
        l = next;
    }
}

bool StateBase::try_start() noexcept {
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    for (;;) {
        if ((w & (phase_mask | outcome_mask)) != phase_pending) return false;
        if (word_.compare_exchange_weak(w, (w & ~phase_mask) | phase_running | flag_started,
                                        std::memory_order_acq_rel, std::memory_order_relaxed))
            return true;
    }
}

void StateBase::set_outcome(std::uint32_t outcome) noexcept {
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    while (!word_.compare_exchange_weak(w, (w & ~outcome_mask) | outcome,
                                        std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
    }
}

void StateBase::finish(std::uint32_t outcome) noexcept {
    const std::uint32_t w = word_.load(std::memory_order_relaxed);
    const bool via_loop =
        outcome == outcome_value ? (w & flag_callback) != 0 : (w & flag_error_callback) != 0;
    if (via_loop) {
        set_phase_outcome(word_, phase_completing, outcome);
        pool_->post_callbacks(this);
    } else {
        make_ready(outcome);  // the outcome and the phase in one read-modify-write
    }
}

void StateBase::finish_alone(std::uint32_t outcome) noexcept {
    PoolCore* pool = pool_;
    const std::uint32_t w = phase_ready | flag_started | outcome;
    count_outcome(pool, w);
    // Read by the destructors only (the value lives iff outcome_value; the payload ended).
    word_.store(w, std::memory_order_relaxed);
    destroy();              // before the unit: join() returns after the value is gone
    pool->release_unit();   // the last touch of the pool
}

bool StateBase::cancel() noexcept {
    std::uint32_t w = word_.load(std::memory_order_acquire);
    for (;;) {
        if ((w & outcome_mask) == outcome_cancelled) return true;
        if ((w & (phase_mask | outcome_mask)) != phase_pending) return false;
        const std::uint32_t nw =
            (w & ~(phase_mask | outcome_mask)) | phase_completing | outcome_cancelled;
        if (word_.compare_exchange_weak(w, nw, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
            break;
    }
    // Pending until now, so the task's unit of work keeps the pool alive.
    try {
        error_ = std::make_exception_ptr(CancelledError());
    } catch (...) {
        error_ = std::current_exception();  // bad_alloc: deliver that instead
    }
    pool_->note_cancelled();
    if (w & flag_error_callback)
        pool_->post_callbacks(this);
    else
        make_ready();
    return true;
}

void StateBase::discard() noexcept {
    cancel();
    release();  // the queue's reference
}

void StateBase::make_ready(std::uint32_t outcome) noexcept {
    PoolCore* pool = pool_;
    count_outcome(pool, word_.load(std::memory_order_relaxed) | outcome);
    // Once ready, the state may outlive its pool, and a new pool may be built at its
    // address: add_done_callback asks the registry by id (published by the fetch_or).
    pool_id_ = pool->id();
    const std::uint32_t old = word_.fetch_or(phase_ready | outcome, std::memory_order_acq_rel);
    if (old & flag_waiters) {
        Stripe& st = stripe_for(this);
        { std::lock_guard lk(st.m); }
        st.cv.notify_all();
    }
    if (old & flag_helpers) pool->notify_helpers();
    if (old & flag_listeners) {
        DoneCallbacks* done = nullptr;
        {
            // Under the stripe lock, so a listener's owner cannot vanish while it is notified.
            std::lock_guard lk(stripe_for(this).m);
            CompletionListener* l = std::exchange(listeners_, nullptr);
            while (l) {
                CompletionListener* next = l->listener_next_;
                l->listener_next_ = l->listener_prev_ = nullptr;
                l->listener_linked_ = false;
                if (DoneCallbacks* d = as_done_callbacks(l))
                    done = d;
                else
                    l->notify(l);
                l = next;
            }
        }
        if (done) {
            for (auto& fn : done->fns) pool->post_loop(std::move(fn));  // waiters woke first
            delete done;
        }
    }
    pool->release_unit();  // the last touch of the pool
}

std::exception_ptr StateBase::outcome_exception() const { return error_; }

void StateBase::run_callbacks() noexcept {
    try {
        invoke_callbacks();
    } catch (...) {
        std::exception_ptr e = std::current_exception();
        const std::uint32_t outcome = word_.load(std::memory_order_relaxed) & outcome_mask;
        if (outcome != outcome_cancelled) {
            if (outcome == outcome_value) drop_value();  // the error replaces it
            error_ = e;
            set_outcome(outcome_error);
        }
        pool_->report_callback_error(e);
    }
    make_ready();
}

bool StateBase::wait_until(std::optional<Clock::time_point> deadline) const {
    if (is_ready()) return true;
    if (deadline && *deadline <= Clock::now()) return false;  // a zero timeout only checks
    PoolCore* pool = pool_;  // not ready: the pool is alive
    if (pool->on_loop() && (word() & (flag_callback | flag_error_callback)) != 0) {
        throw DeadlockError(
            "waiting on the pool's callback thread for a result that has a callback would "
            "never finish: its callback needs this thread");
    }
    // On a worker of the pool, a wait without a deadline runs the awaited task itself if it
    // is still queued. A timed wait never does: the task could run past the deadline.
    if (!deadline && PoolCore::current_worker_pool() == pool) {
        pool->run_awaited(const_cast<StateBase*>(this));
        if (is_ready()) return true;
    }
    // A short task finishes sooner than a futex sleep and wake-up: spin briefly first.
    if (spin_until([this] { return is_ready(); })) return true;
    // On a thread of any pool, a spare thread keeps that pool's parallelism meanwhile.
    PoolCore::Blocking blocking;

    auto& word = const_cast<std::atomic<std::uint32_t>&>(word_);
    // Untimed waits of this pool's threads on its results form the wait-for graph through
    // the callback thread (PoolCore::enter_wait); flag_waiters goes first (post_callbacks
    // looks at it).
    const bool loop_wait = !deadline && pool->on_loop();
    const bool graph_wait = !deadline && PoolCore::current_worker_pool() == pool;
    PoolCore::WaitRecord record;
    struct Leave {
        PoolCore* pool;
        PoolCore::WaitRecord* record;  // null: the loop's wait
        bool active;
        ~Leave() {
            if (!active) return;
            if (record)
                pool->leave_wait(*record);
            else
                pool->loop_wait_end();
        }
    } leave{pool, graph_wait ? &record : nullptr, loop_wait || graph_wait};
    if (leave.active) {
        word.fetch_or(flag_waiters, std::memory_order_seq_cst);
        if (graph_wait)
            pool->enter_wait(record, this);
        else
            pool->loop_wait_begin(this);
    }

    Stripe& st = stripe_for(this);
    std::unique_lock lk(st.m);
    word.fetch_or(flag_waiters, std::memory_order_acq_rel);
    while (!is_ready()) {
        if (loop_wait && pool->loop_deadlocked()) {
            throw DeadlockError(
                "waiting on the pool's callback thread would never finish: the awaited task "
                "waits (through pool threads) for a result whose callback is queued behind "
                "this one");
        }
        if (!deadline) {
            st.cv.wait(lk);
        } else if (st.cv.wait_until(lk, *deadline) == std::cv_status::timeout) {
            return is_ready();
        }
    }
    return true;
}

void StateBase::wake_stripe(const void* p) noexcept {
    Stripe& st = stripe_for(p);
    { std::lock_guard lk(st.m); }
    st.cv.notify_all();
}

void StateBase::add_done_callback(Function<void()> fn) {
    {
        std::lock_guard lk(stripe_for(this).m);
        if (listening_locked()) {
            DoneCallbacks* done = nullptr;
            for (CompletionListener* l = listeners_; l && !done; l = l->listener_next_)
                done = as_done_callbacks(l);
            if (!done) {
                done = new DoneCallbacks;
                link_listener(done);  // from here the state owns it, even if the push throws
            }
            done->fns.push_back(std::move(fn));
            return;
        }
    }
    if (with_live_pool(pool_id_, [&](PoolCore& p) { return p.try_post_loop(fn); })) return;
    try {
        fn();  // the callback thread has finished: run at once on the calling thread
    } catch (...) {
        std::fputs("pypool: a done callback threw an exception; ignored\n", stderr);
    }
}

bool StateBase::add_listener(CompletionListener* l) noexcept {
    std::lock_guard lk(stripe_for(this).m);
    if (!listening_locked()) return false;
    link_listener(l);
    return true;
}

bool StateBase::listening_locked() noexcept {
    const std::uint32_t old = word_.fetch_or(flag_listeners, std::memory_order_acq_rel);
    return (old & phase_mask) != phase_ready;
}

void StateBase::link_listener(CompletionListener* l) noexcept {
    l->listener_prev_ = nullptr;
    l->listener_next_ = listeners_;
    if (listeners_) listeners_->listener_prev_ = l;
    listeners_ = l;
    l->listener_linked_ = true;
}

void StateBase::remove_listener(CompletionListener* l) noexcept {
    std::lock_guard lk(stripe_for(this).m);  // also waits out a notify in progress
    if (!l->listener_linked_) return;
    if (l->listener_prev_)
        l->listener_prev_->listener_next_ = l->listener_next_;
    else
        listeners_ = l->listener_next_;
    if (l->listener_next_) l->listener_next_->listener_prev_ = l->listener_prev_;
    l->listener_next_ = l->listener_prev_ = nullptr;
    l->listener_linked_ = false;
}

}  // namespace pypool::detail
