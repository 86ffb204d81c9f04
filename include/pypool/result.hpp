#pragma once
/// @file
/// AsyncResult<T> (alias Future<T>): the handle to a task's outcome, with both Python's
/// multiprocessing vocabulary (get/wait/ready/successful) and concurrent.futures' one
/// (result/exception/done/running/cancelled/cancel/add_done_callback).

#include <chrono>
#include <compare>
#include <cstddef>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include <pypool/detail/deadline.hpp>
#include <pypool/detail/state.hpp>
#include <pypool/errors.hpp>

namespace pypool {

/// A cheap, copyable handle to the shared state of one task (or one map). Every member
/// may be called from any thread; blocking members throw DeadlockError on the pool's
/// callback thread when the result needs that thread to become ready.
template <class T>
class AsyncResult {
    using State = detail::ResultState<T>;
    using const_ref = std::conditional_t<std::is_void_v<T>, void, std::add_lvalue_reference_t<const T>>;

public:
    /// An empty handle: valid() is false and every wait throws ValueError.
    AsyncResult() noexcept = default;
    /// Internal: adopts a reference to a state.
    explicit AsyncResult(detail::StateRef<State> s) noexcept : s_(std::move(s)) {}

    /// True if the handle refers to a task. Never throws.
    bool valid() const noexcept { return static_cast<bool>(s_); }

    /// Blocks until ready; returns the value or rethrows the task's exception
    /// (CancelledError if cancelled; ValueError if empty).
    const_ref get() const& {
        const State* s = state();
        s->wait();
        return deliver(s);
    }
    /// As get(), but throws TimeoutError if not ready within timeout.
    template <class Rep, class Period>
    const_ref get(std::chrono::duration<Rep, Period> timeout) const& {
        return deliver(wait_or_throw(timeout));
    }
    /// Blocks until ready and moves the value out of the shared state; throws as get().
    T get() && {
        State* s = state();
        s->wait();
        return take(s);
    }
    /// As get() &&, but throws TimeoutError if not ready within timeout.
    template <class Rep, class Period>
    T get(std::chrono::duration<Rep, Period> timeout) && {
        return take(wait_or_throw(timeout));
    }
    /// Same as get() (concurrent.futures vocabulary).
    const_ref result() const& { return get(); }
    /// Same as get(timeout).
    template <class Rep, class Period>
    const_ref result(std::chrono::duration<Rep, Period> timeout) const& {
        return get(timeout);
    }
    /// Same as std::move(*this).get().
    T result() && { return std::move(*this).get(); }
    /// Same as std::move(*this).get(timeout).
    template <class Rep, class Period>
    T result(std::chrono::duration<Rep, Period> timeout) && {
        return std::move(*this).get(timeout);
    }

    /// Blocks until ready (ValueError if empty; DeadlockError, see above).
    void wait() const { state()->wait(); }
    /// Blocks until ready or timeout; true if ready. Zero or negative only checks.
    template <class Rep, class Period>
    bool wait(std::chrono::duration<Rep, Period> timeout) const {
        return state()->wait_until(detail::deadline_after(timeout));
    }
    /// True once the outcome (and its callback, if any) is complete. Never throws.
    bool ready() const noexcept { return s_ && s_->is_ready(); }
    /// True if ready and the task returned a value; ValueError("... not ready") if not ready.
    bool successful() const {
        const State* s = state();
        if (!s->is_ready()) throw ValueError("AsyncResult not ready");
        return s->outcome() == detail::outcome_value;
    }

    /// Blocks until ready; the task's exception, or nullptr if it succeeded. Throws
    /// CancelledError if the task was cancelled.
    std::exception_ptr exception() const {
        const State* s = state();
        s->wait();
        return exception_of_ready(s);
    }
    /// As exception(), but throws TimeoutError if not ready within timeout.
    template <class Rep, class Period>
    std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
        return exception_of_ready(wait_or_throw(timeout));
    }
    /// Same as ready(). Never throws.
    bool done() const noexcept { return ready(); }
    /// True while the task (or its callback) runs. Never throws.
    bool running() const noexcept {
        if (!s_) return false;
        const auto w = s_->word();
        const auto phase = w & detail::phase_mask;
        return phase == detail::phase_running ||
               (phase == detail::phase_completing &&
                (w & detail::outcome_mask) != detail::outcome_cancelled);
    }
    /// True once the task was cancelled (by cancel(), terminate() or shutdown). Never throws.
    bool cancelled() const noexcept {
        return s_ && s_->outcome() == detail::outcome_cancelled;
    }
    /// Cancels the task if it has not started; true if it is cancelled (now or before).
    /// ValueError if empty. const: the handle is shared state (as std::shared_future is),
    /// so a result used as a std::map key can be cancelled.
    bool cancel() const { return state()->cancel(); }
    /// Runs fn(*this) on the callback thread once done (at once, on the calling thread,
    /// if the pool's callback thread has finished). ValueError if empty. const, as cancel().
    void add_done_callback(std::function<void(const AsyncResult&)> fn) const {
        State* s = state();
        if (!fn) return;
        s->add_done_callback([fn = std::move(fn), self = *this]() mutable { fn(self); });
    }

    /// Same task (or both empty).
    friend bool operator==(const AsyncResult& a, const AsyncResult& b) noexcept {
        return a.s_.get() == b.s_.get();
    }
    /// Orders handles by the identity of their task (stable while the task lives), so
    /// results can be std::map keys (Python's {ex.submit(...): i}). Never throws.
    friend std::strong_ordering operator<=>(const AsyncResult& a, const AsyncResult& b) noexcept {
        return std::compare_three_way{}(a.s_.get(), b.s_.get());
    }
    /// Internal: the shared state (nullptr if empty).
    State* state_ptr() const noexcept { return s_.get(); }

protected:
    /// The state; ValueError("AsyncResult has no state") if empty.
    State* state() const {
        if (!s_) throw ValueError("AsyncResult has no state");
        return s_.get();
    }
    /// Waits up to timeout; TimeoutError if not ready by then; ValueError if empty.
    template <class Rep, class Period>
    State* wait_or_throw(std::chrono::duration<Rep, Period> timeout) const {
        State* s = state();  // non-null from here on (also for the compiler's flow analysis)
        if (!s->wait_until(detail::deadline_after(timeout)))
            throw TimeoutError("result not ready within the timeout");
        return s;
    }
    /// The exception of a ready state (nullptr on success); rethrows CancelledError.
    static std::exception_ptr exception_of_ready(const State* s) {
        if (s->outcome() == detail::outcome_cancelled) std::rethrow_exception(s->error());
        return s->outcome() == detail::outcome_value ? nullptr : s->error();
    }
    /// The value of a ready state, or rethrows its exception.
    static const_ref deliver(const State* s) {
        if (s->outcome() != detail::outcome_value) std::rethrow_exception(s->error());
        if constexpr (!std::is_void_v<T>) return s->value();
    }
    /// Moves the value out of a ready state, or rethrows its exception.
    static T take(State* s) {
        if (s->outcome() != detail::outcome_value) std::rethrow_exception(s->error());
        if constexpr (!std::is_void_v<T>) return std::move(s->value());
    }

    detail::StateRef<State> s_;  ///< the shared state (null for an empty handle)
};

/// concurrent.futures' name for the same handle.
template <class T>
using Future = AsyncResult<T>;

}  // namespace pypool

/// Hashes an AsyncResult by the identity of its task.
template <class T>
struct std::hash<pypool::AsyncResult<T>> {
    /// The hash of the task's identity. Never throws.
    std::size_t operator()(const pypool::AsyncResult<T>& r) const noexcept {
        return std::hash<const void*>{}(r.state_ptr());
    }
};
