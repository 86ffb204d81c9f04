#pragma once
// Internal: the queue node (Job) and the shared state behind every AsyncResult (StateBase).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <utility>

#include <pypool/detail/state_alloc.hpp>
#include <pypool/function.hpp>

namespace pypool::detail {

class PoolCore;

/// A unit of work in a pool's queue. The queue owns the job until run() or discard().
class Job {
public:
    Job* next_ = nullptr;
    /// Runs on a worker; consumes the queue's ownership.
    virtual void run() noexcept = 0;
    /// Called instead of run() by terminate()/shutdown(cancel_futures): complete as
    /// cancelled; consumes the queue's ownership.
    virtual void discard() noexcept = 0;

protected:
    Job() = default;
    ~Job() = default;
};

// Layout of StateBase::word_.
enum : std::uint32_t {
    phase_pending = 0,     // queued
    phase_running = 1,     // a worker runs it
    phase_completing = 2,  // outcome set, its callback/error_callback queued on the loop
    phase_ready = 3,       // done(): waiters may read the outcome
    phase_mask = 3,
    outcome_none = 0,
    outcome_value = 4,
    outcome_error = 8,
    outcome_cancelled = 12,
    outcome_mask = 12,
    flag_waiters = 16,         // a thread parks on the state's stripe
    flag_helpers = 32,         // a worker of pool_ waits for it on the pool's condition
    flag_started = 64,         // try_start() succeeded once (set with phase_running)
    flag_callback = 128,       // has a callback (readiness needs the loop on success)
    flag_error_callback = 256, // has an error_callback (readiness needs the loop on failure)
    flag_listeners = 512,      // listeners (or done callbacks) are linked: see CompletionListener
    flag_uncounted = 1024,     // not a task (an empty map): make_ready() counts no outcome
};

/// A node by which a multi-result waiter (pypool::wait, as_completed) hears that one state
/// became ready. Linked into the state's intrusive list under its stripe lock; notify is
/// called once, on the completing thread, inside make_ready() right after the state's
/// waiters woke and before its done callbacks are posted, with the stripe lock held: it
/// must be short, must not block and must not touch any result's stripe.
struct CompletionListener {
    void (*notify)(CompletionListener* self) noexcept = nullptr;
    CompletionListener* listener_next_ = nullptr;  // guarded by the state's stripe lock
    CompletionListener* listener_prev_ = nullptr;
    bool listener_linked_ = false;
};

using Clock = std::chrono::steady_clock;

/// Shared state of one result: reference count, phase/outcome word, stored exception.
/// Non-template logic lives in src/state.cpp.
class StateBase : public Job {
public:
    StateBase(PoolCore* pool, std::uint32_t flags, std::uint32_t refs) noexcept
        : refs_(refs), word_(flags), pool_(pool) {}

    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        // The last reference (a result nobody kept, say): no other thread holds one, so none
        // can add one, and the read-modify-write is not needed. The acquire pairs with the
        // release of whoever dropped theirs.
        if (refs_.load(std::memory_order_acquire) == 1 ||
            refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
            destroy();
    }

    std::uint32_t word() const noexcept { return word_.load(std::memory_order_acquire); }
    std::uint32_t phase() const noexcept { return word() & phase_mask; }
    std::uint32_t outcome() const noexcept { return word() & outcome_mask; }
    bool is_ready() const noexcept { return phase() == phase_ready; }
    PoolCore* pool() const noexcept { return pool_; }
    const std::exception_ptr& error() const noexcept { return error_; }

    /// True for a queued task whose only reference is the running worker's and to which
    /// nothing is attached (no callback, waiter, helper or listener): no other thread can
    /// cancel, await or observe it (adding any of these needs a reference).
    bool alone() const noexcept {
        return refs_.load(std::memory_order_acquire) == 1 &&
               word_.load(std::memory_order_relaxed) == phase_pending;
    }
    /// Completes a task that ran alone() with `outcome`: counts it, frees the state, then
    /// releases the pool's unit of work. No read-modify-write on the state.
    void finish_alone(std::uint32_t outcome) noexcept;
    /// Pending -> running (setting flag_started); false if it started or was cancelled first.
    bool try_start() noexcept;
    /// Stores the outcome of a run, then completes: through the loop if a callback must
    /// run, else at once. The caller holds a reference.
    void finish(std::uint32_t outcome) noexcept;
    /// Pending -> cancelled, completing through the loop if an error_callback must run.
    /// True if it is cancelled (now or before). The caller holds a reference.
    virtual bool cancel() noexcept;
    /// Marks the state ready (setting the outcome bits `outcome` too, where the outcome was
    /// none until now), wakes waiters, posts done callbacks, releases the pool's unit of
    /// work. The caller holds a reference.
    void make_ready(std::uint32_t outcome = outcome_none) noexcept;

    /// Blocks until ready or the deadline; true if ready. Throws DeadlockError when called
    /// on the pool's callback thread for a result that needs that thread to become ready.
    bool wait_until(std::optional<Clock::time_point> deadline) const;
    /// wait_until(nullopt) and ValueError-free; used by waits without timeout.
    void wait() const { (void)wait_until(std::nullopt); }
    /// Adds a done callback (runs on the loop once ready, or inline if the loop is gone).
    void add_done_callback(Function<void()> fn);
    /// Links l so that l->notify(l) runs when this state becomes ready; false (l not linked)
    /// if it is ready already. Never touches the pool.
    bool add_listener(CompletionListener* l) noexcept;
    /// Unlinks l if still linked. Once it returns, l->notify is not running and will not
    /// run: l may be destroyed.
    void remove_listener(CompletionListener* l) noexcept;
    /// Runs this still-queued task on the calling worker of its pool (which waits for it);
    /// false if it started or was cancelled already, or is no single task. The caller
    /// holds a reference.
    virtual bool run_inline() noexcept { return false; }
    /// Calls the callback/error_callback on the loop thread, then make_ready().
    virtual void run_callbacks() noexcept;
    /// Wakes the threads parked on the stripe of the state at address p.
    static void wake_stripe(const void* p) noexcept;
    /// Exception to deliver for outcome (stored error, or a CancelledError).
    std::exception_ptr outcome_exception() const;
    /// Sets the outcome bits (used when a callback throws).
    void set_outcome(std::uint32_t outcome) noexcept;

    StateBase(const StateBase&) = delete;
    StateBase& operator=(const StateBase&) = delete;

    // States of every kind are recycled per thread (detail/state_alloc.hpp); the virtual
    // destructor hands the dynamic type's size to the sized delete.
    static void* operator new(std::size_t size) { return state_alloc(size); }
    static void operator delete(void* p, std::size_t size) noexcept { state_free(p, size); }
    static void* operator new(std::size_t size, std::align_val_t al) { return ::operator new(size, al); }
    // The global deletes called here are the unsized ones: clang 14 declares the sized
    // ones only with -fsized-deallocation.
    static void operator delete(void* p, std::size_t, std::align_val_t al) noexcept {
        ::operator delete(p, al);
    }

protected:
    virtual ~StateBase();
    virtual void destroy() noexcept { delete this; }
    /// Calls the user callback for the outcome; may throw (the caller reports it).
    virtual void invoke_callbacks() {}
    /// Ends the value of an outcome_value state whose outcome becomes an error.
    virtual void drop_value() noexcept {}
    /// With the stripe lock held: sets flag_listeners and tests readiness in one
    /// read-modify-write (make_ready() sets phase_ready with one too, so either it sees the
    /// flag and takes the lock after us, or we see it ready); true if not ready yet.
    bool listening_locked() noexcept;
    /// Links l at the head of listeners_; the caller holds the stripe lock.
    void link_listener(CompletionListener* l) noexcept;
    // Jobs that are states: a queued state runs its task in run(); default: never queued.
    void run() noexcept override {}
    void discard() noexcept override;

    std::atomic<std::uint32_t> refs_;
    std::atomic<std::uint32_t> word_;
    PoolCore* pool_;
    std::exception_ptr error_;
    // Completion listeners, and at most one node holding the done callbacks (src/state.cpp);
    // guarded by the stripe lock.
    CompletionListener* listeners_ = nullptr;
    // One word for two fields that are never live at once (8 bytes less per state).
    union {
        // The loop's completion stack (PoolCore::post_callbacks): linked while the phase is
        // phase_completing; drain_completions() unlinks a state before it makes it ready.
        StateBase* loop_next_ = nullptr;
        // pool_->id(), written by make_ready() and read only once the state is ready.
        std::uint64_t pool_id_;
    };

    friend class PoolCore;
};

/// Room for one T without a flag of its own (a std::optional's would add 8 bytes to a
/// state holding an i64): the owner says when a T lives there.
template <class T>
union ValueSlot {
    ValueSlot() noexcept {}
    ~ValueSlot() {}
    T v;
};

/// Shared state holding a T (or nothing for void). The value lives exactly while the
/// outcome is outcome_value: built by emplace_value() before the outcome is set, ended by
/// the destructor, or by drop_value() when a throwing callback turns the outcome into an
/// error.
template <class T>
class ResultState : public StateBase {
public:
    using StateBase::StateBase;
    /// Builds the value; the caller then sets the outcome to outcome_value (or, if this
    /// throws, to an error: no value was built).
    template <class... A>
    void emplace_value(A&&... a) {
        std::construct_at(&value_.v, std::forward<A>(a)...);
    }
    /// The value; only while the outcome is outcome_value.
    T& value() noexcept { return value_.v; }
    const T& value() const noexcept { return value_.v; }

protected:
    ~ResultState() override {
        if ((this->word_.load(std::memory_order_relaxed) & outcome_mask) == outcome_value)
            std::destroy_at(&value_.v);
    }
    void drop_value() noexcept override { std::destroy_at(&value_.v); }

private:
    ValueSlot<T> value_;
};
template <>
class ResultState<void> : public StateBase {
public:
    using StateBase::StateBase;
};

/// Intrusive owning pointer to a state.
template <class S>
class StateRef {
public:
    StateRef() noexcept = default;
    /// Adopts one reference.
    explicit StateRef(S* s) noexcept : p_(s) {}
    StateRef(const StateRef& o) noexcept : p_(o.p_) {
        if (p_) p_->add_ref();
    }
    StateRef(StateRef&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    StateRef& operator=(StateRef o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~StateRef() {
        if (p_) p_->release();
    }
    S* get() const noexcept { return p_; }
    S* operator->() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    S* p_ = nullptr;
};

}  // namespace pypool::detail
