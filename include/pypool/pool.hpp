#pragma once
/// @file
/// ThreadPool: Python's multiprocessing.pool.ThreadPool and concurrent.futures'
/// ThreadPoolExecutor in one class.

#include <cstddef>
#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>

#include <pypool/detail/pool_core.hpp>
#include <pypool/detail/task.hpp>
#include <pypool/errors.hpp>
#include <pypool/function.hpp>
#include <pypool/options.hpp>
#include <pypool/result.hpp>

namespace pypool {

/// A pool of worker threads plus one callback thread. All members may be called from any
/// thread unless noted; submitting members throw ValueError("Pool not running") after
/// close()/terminate() (RuntimeError after shutdown()), except from inside the pool.
class ThreadPool {
public:
    /// A pool of max(1, hardware_concurrency()) workers. Throws std::system_error if a
    /// thread cannot start.
    ThreadPool() : ThreadPool(PoolOptions{}) {}
    /// A pool of `processes` workers; < 1: ValueError("Number of processes must be at least 1").
    explicit ThreadPool(int processes) : ThreadPool(PoolOptions{.processes = processes}) {}
    /// A pool built from options; throws the ValueError above, or what the initializer threw
    /// (then no thread is left running).
    explicit ThreadPool(PoolOptions options) : core_(std::move(options)) {}
    /// If still running: close() then join(); otherwise join(). Never drops accepted work.
    /// Calling it on one of the pool's own threads prints a message and calls std::terminate().
    ~ThreadPool() = default;
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    /// Number of worker threads. Never throws.
    std::size_t size() const noexcept { return core_.size(); }
    /// Counters taken now (see PoolStats). Never throws.
    PoolStats stats() const noexcept { return core_.stats(); }

    // ---- multiprocessing.pool: single tasks ----------------------------------------------

    /// Runs f(args...) on a worker and returns its result (blocks; on a worker of this pool
    /// it runs queued tasks meanwhile). Rethrows what f threw; throws if not accepting.
    template <class F, class... Args>
        requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
    detail::apply_result_t<F, Args...> apply(F&& f, std::tuple<Args...> args = {}) {
        return apply_async(std::forward<F>(f), std::move(args)).get();
    }

    /// Queues f(args...) and returns its AsyncResult at once. cb.callback / cb.error_callback
    /// run on the callback thread; the result is ready after the one called returned.
    /// Throws ValueError/RuntimeError if the pool does not accept work.
    template <class F, class... Args>
        requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
    AsyncResult<detail::apply_result_t<F, Args...>> apply_async(
        F&& f, std::tuple<Args...> args = {},
        Callbacks<detail::apply_result_t<F, Args...>> cb = {}) {
        using R = detail::apply_result_t<F, Args...>;
        using Tuple = std::tuple<std::decay_t<Args>...>;
        std::uint32_t flags = 0;
        if (cb.callback) flags |= detail::flag_callback;
        if (cb.error_callback) flags |= detail::flag_error_callback;
        if (flags != 0) {
            return launch(new detail::TaskState<R, std::decay_t<F>, Tuple, true>(
                &core_, std::forward<F>(f), std::move(args), std::move(cb), flags));
        }
        detail::NoCallbacks none;
        return launch(new detail::TaskState<R, std::decay_t<F>, Tuple, false>(
            &core_, std::forward<F>(f), std::move(args), std::move(none), 0));
    }

    // ---- concurrent.futures ---------------------------------------------------------------

    /// Queues f(args...) (arguments decay-copied) and returns its Future at once. Throws
    /// RuntimeError("cannot schedule new futures after shutdown") after shutdown().
    template <class F, class... Args>
        requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
    AsyncResult<detail::apply_result_t<F, Args...>> submit(F&& f, Args&&... args) {
        return apply_async(std::forward<F>(f),
                           std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...));
    }

    /// close(); with cancel_futures also cancels every queued task; with wait also join().
    /// Idempotent. Throws DeadlockError for wait=true on a thread of this pool.
    void shutdown(bool wait = true, bool cancel_futures = false) {
        core_.shutdown(wait, cancel_futures);
    }

    // ---- lifecycle ---------------------------------------------------------------------------

    /// Accept no new tasks from outside the pool; queued work still runs. Never throws.
    void close() { core_.close(); }
    /// Complete every queued task as cancelled (CancelledError) and return without waiting;
    /// running tasks finish. Never throws.
    void terminate() { core_.terminate(); }
    /// Waits until every task, every callback and every thread has finished. Throws
    /// ValueError("Pool is still running") before close()/terminate(), DeadlockError on a
    /// thread of this pool.
    void join() { core_.join(); }

    /// Internal: the non-template core (used by the map, futures and Asio headers).
    detail::PoolCore& detail_core() noexcept { return core_; }

private:
    template <class S>
    auto launch(S* s) {
        using R = std::remove_cvref_t<decltype(*s)>;
        AsyncResult<typename ResultOf<R>::type> handle{
            detail::StateRef<detail::ResultState<typename ResultOf<R>::type>>(s)};
        try {
            core_.submit(s);
        } catch (...) {
            s->release();  // the queue's reference; the handle frees the state
            throw;
        }
        return handle;
    }
    template <class S>
    struct ResultOf;
    template <class R, class Fn, class Tuple, bool W>
    struct ResultOf<detail::TaskState<R, Fn, Tuple, W>> {
        using type = R;
    };

    detail::PoolCore core_;
};

}  // namespace pypool
