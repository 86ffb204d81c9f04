#pragma once
// Internal: the state of one apply_async/submit task: the callable, its arguments, the
// result and (optionally) the callbacks, in one allocation.

#include <cstdint>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include <pypool/detail/concepts.hpp>
#include <pypool/detail/pool_core.hpp>
#include <pypool/detail/state.hpp>
#include <pypool/errors.hpp>
#include <pypool/options.hpp>

namespace pypool::detail {

/// The decayed result of calling a decay-copied F with decay-copied Args as rvalues, or
/// not_callable where that call is invalid (so that a signature naming it substitutes and
/// its task_callable constraint reports the mistake, also with clang, which substitutes
/// the return type before it checks constraints).
template <class F, class... Args>
struct ApplyResult {
    using type = not_callable;
};
template <class F, class... Args>
    requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
struct ApplyResult<F, Args...> {
    using type = std::decay_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>>;
};
template <class F, class... Args>
using apply_result_t = typename ApplyResult<F, Args...>::type;

/// A task's callable and its arguments, as the job keeps them until it runs. An empty
/// callable (a lambda without captures) or empty arguments take no room.
template <class Fn, class Tuple>
struct Payload {
    template <class F, class T>
    Payload(F&& f, T&& a) : fn(std::forward<F>(f)), args(std::forward<T>(a)) {}
    [[no_unique_address]] Fn fn;
    [[no_unique_address]] Tuple args;
};

struct NoCallbacks {};

/// Thrown by a task's callable when the pool killed the running task (ProcessPool's
/// terminate()): the task then ends as cancelled, not as failed.
struct RunCancelled : CancelledError {
    RunCancelled() = default;
};

template <class R, class Fn, class Tuple, bool WithCallbacks>
class TaskState final : public ResultState<R> {
    using Cbs = std::conditional_t<WithCallbacks, Callbacks<R>, NoCallbacks>;
    // The constructor cannot unwind a built payload_ (a union member): nothing after it throws.
    static_assert(std::is_nothrow_move_constructible_v<Cbs>);

public:
    template <class F, class T>
    TaskState(PoolCore* pool, F&& f, T&& args, Cbs&& cbs, std::uint32_t flags)
        : ResultState<R>(pool, flags, 2),  // one reference for the handle, one for the queue
          payload_(std::forward<F>(f), std::forward<T>(args)),
          cbs_(std::move(cbs)) {}

    ~TaskState() override {
        // Every other path ends the payload (execute, or run()/discard() of a task
        // cancelled while queued); it is alive here only for a task never started nor
        // cancelled: one whose submission failed.
        if ((this->word_.load(std::memory_order_relaxed) & (flag_started | outcome_mask)) ==
            outcome_none)
            end_payload();
    }

    void run() noexcept override {
        if (this->alone()) {  // nobody can cancel, await or observe it: no read-modify-write
            this->finish_alone(run_payload());
            return;
        }
        if (!this->try_start()) {  // cancelled while queued, or run inline by a waiting worker
            if ((this->word() & flag_started) == 0)
                end_payload();  // cancelled: the pool keeps no reference to the arguments
            this->release();
            return;
        }
        execute();
        this->release();
    }

    /// A worker of the pool waits for this task while it is still queued: run it here
    /// (the queue's node stays; its run() then finds the task started and only releases).
    bool run_inline() noexcept override {
        if (!this->try_start()) return false;
        execute();
        return true;
    }

    void discard() noexcept override {  // terminate()/shutdown(cancel_futures)
        // Cancelled and never started (a task the pool killed also ends cancelled, but its
        // run ended the payload): nobody else touches payload_.
        if (this->cancel() && (this->word() & flag_started) == 0) end_payload();
        this->release();
    }

private:
    void invoke_callbacks() override {
        if constexpr (WithCallbacks) {
            auto callback = std::move(cbs_.callback);
            auto error_callback = std::move(cbs_.error_callback);
            if (this->outcome() == outcome_value) {
                if (callback) {
                    if constexpr (std::is_void_v<R>)
                        callback();
                    else
                        callback(this->value());
                }
            } else if (error_callback) {
                error_callback(this->error_);
            }
        }
    }

    void execute() noexcept { this->finish(run_payload()); }

    /// Runs the task and ends its payload; returns the outcome (the value or error stored).
    std::uint32_t run_payload() noexcept {
        PoolCore* pool = this->pool_;
        pool->note_started();
        std::uint32_t outcome = outcome_value;
        try {
            auto& [fn, args] = payload_;
            if constexpr (std::is_void_v<R>) {
                std::apply(std::move(fn), std::move(args));
            } else {
                this->emplace_value(std::apply(std::move(fn), std::move(args)));
            }
        } catch (const RunCancelled&) {
            try {
                this->error_ = std::make_exception_ptr(CancelledError());
            } catch (...) {
                this->error_ = std::current_exception();
            }
            outcome = outcome_cancelled;
        } catch (...) {
            this->error_ = std::current_exception();
            outcome = outcome_error;
        }
        end_payload();  // the pool keeps no reference to the arguments
        pool->note_ran();
        return outcome;
    }

    void end_payload() noexcept { std::destroy_at(&payload_); }

    // Alive from construction until exactly one of the paths above ends it: no flag of its
    // own (a std::optional's would make a small task's state 72 bytes, not one 64-byte line).
    union {
        Payload<Fn, Tuple> payload_;
    };
    [[no_unique_address]] Cbs cbs_;
};

}  // namespace pypool::detail
