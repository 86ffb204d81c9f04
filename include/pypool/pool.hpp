#pragma once
/// @file
/// ThreadPool: Python's multiprocessing.pool.ThreadPool and concurrent.futures'
/// ThreadPoolExecutor in one class.

#include <cstddef>
#include <exception>
#include <initializer_list>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <pypool/detail/pool_core.hpp>
#include <pypool/detail/task.hpp>
#include <pypool/errors.hpp>
#include <pypool/function.hpp>
#include <pypool/map.hpp>
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
        requires task_callable<F, Args...>
    detail::apply_result_t<F, Args...> apply(F&& f, std::tuple<Args...> args = {}) {
        return apply_async(std::forward<F>(f), std::move(args)).get();
    }

    /// Queues f(args...) and returns its AsyncResult at once. cb.callback / cb.error_callback
    /// run on the callback thread; the result is ready after the one called returned.
    /// Throws ValueError/RuntimeError if the pool does not accept work.
    template <class F, class... Args>
        requires task_callable<F, Args...>
    AsyncResult<detail::apply_result_t<F, Args...>> apply_async(
        F&& f, std::tuple<Args...> args = {},
        Callbacks<detail::apply_result_t<F, Args...>> cb = {}) {
        using R = detail::apply_result_t<F, Args...>;
        using Tuple = std::tuple<std::decay_t<Args>...>;
        std::uint32_t flags = 0;
        if (cb.callback) flags |= detail::flag_callback;
        if (cb.error_callback) flags |= detail::flag_error_callback;
        if (flags != 0) {
            return launch<detail::TaskState<R, std::decay_t<F>, Tuple, true>>(
                std::forward<F>(f), std::move(args), std::move(cb), flags);
        }
        return launch<detail::TaskState<R, std::decay_t<F>, Tuple, false>>(
            std::forward<F>(f), std::move(args), detail::NoCallbacks{}, 0U);
    }

    // ---- concurrent.futures ---------------------------------------------------------------

    /// Queues f(args...) (arguments decay-copied) and returns its Future at once. Throws
    /// RuntimeError("cannot schedule new futures after shutdown") after shutdown().
    template <class F, class... Args>
        requires task_callable<F, Args...>
    AsyncResult<detail::apply_result_t<F, Args...>> submit(F&& f, Args&&... args) {
        return apply_async(std::forward<F>(f),
                           std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...));
    }

    /// close(); with cancel_futures also cancels every queued task; with wait also join().
    /// Idempotent. Throws DeadlockError for wait=true on a thread of this pool.
    void shutdown(bool wait = true, bool cancel_futures = false) {
        core_.shutdown(wait, cancel_futures);
    }

    // ==== bulk work: map, starmap, imap, imap_unordered (issue 3; include/pypool/map.hpp) ====
    // Definitions in include/pypool/detail/map_state.hpp and detail/imap_stream.hpp.

    /// Python's map: f applied to every element of items (read completely first), results in
    /// input order; blocks (a worker of this pool runs queued tasks meanwhile). chunksize 0:
    /// ceil(n / (4 * size())). Throws the exception of the lowest failing position (all items
    /// still run), what reading items threw, or ValueError/RuntimeError if not accepting.
    template <class F, class Range>
        requires map_callable<F, Range>
    std::vector<map_item_t<F, Range>> map(F&& f, Range&& items, std::size_t chunksize = 0) {
        return detail::run_map<false, map_item_t<F, Range>>(core_, std::forward<F>(f),
                                                           std::forward<Range>(items), chunksize);
    }
    /// map over a braced list: pool.map(f, {1, 2, 3}).
    template <class F, class T>
        requires map_callable<F, std::initializer_list<T>&>
    std::vector<map_item_t<F, std::initializer_list<T>&>> map(F&& f, std::initializer_list<T> items,
                                                              std::size_t chunksize = 0) {
        return detail::run_map<false, map_item_t<F, std::initializer_list<T>&>>(
            core_, std::forward<F>(f), items, chunksize);
    }
    /// Python's map_async: as map, but returns a MapResult at once. options.callback gets the
    /// whole vector (also an empty one) on the callback thread; the result is ready after
    /// it returned. Throws what reading items threw, or ValueError/RuntimeError if not accepting.
    template <class F, class Range>
        requires map_async_callable<F, Range>
    MapResult<detail::async_item_t<F, Range>> map_async(
        F&& f, Range&& items, MapOptions<detail::async_item_t<F, Range>> options = {}) {
        return detail::start_map<false, false>(core_, std::forward<F>(f),
                                               std::forward<Range>(items), std::move(options));
    }
    /// map_async over a braced list (copied into the call).
    template <class F, class T>
        requires map_async_callable<F, std::vector<T>>
    MapResult<detail::async_item_t<F, std::vector<T>>> map_async(
        F&& f, std::initializer_list<T> items,
        MapOptions<detail::async_item_t<F, std::vector<T>>> options = {}) {
        return detail::start_map<false, false>(core_, std::forward<F>(f), std::vector<T>(items),
                                               std::move(options));
    }
    /// Python's starmap: std::apply(f, element) for every tuple-like element; as map.
    template <class F, class Range>
        requires starmap_callable<F, Range>
    std::vector<starmap_item_t<F, Range>> starmap(F&& f, Range&& tuples,
                                                  std::size_t chunksize = 0) {
        return detail::run_map<true, starmap_item_t<F, Range>>(
            core_, std::forward<F>(f), std::forward<Range>(tuples), chunksize);
    }
    /// Python's starmap_async: std::apply(f, element) for every element; as map_async.
    template <class F, class Range>
        requires starmap_async_callable<F, Range>
    MapResult<detail::async_staritem_t<F, Range>> starmap_async(
        F&& f, Range&& tuples, MapOptions<detail::async_staritem_t<F, Range>> options = {}) {
        return detail::start_map<true, false>(core_, std::forward<F>(f),
                                              std::forward<Range>(tuples), std::move(options));
    }

    /// Python's imap: a lazy iterator of f(element) in input order. The input is read as the
    /// iterator is consumed (at most max_in_flight chunks ahead); a failing item throws at
    /// its position and iteration goes on. chunksize 0: ValueError("Chunksize must be 1+,
    /// not 0"); ValueError/RuntimeError if not accepting. An lvalue range must outlive the
    /// iterator; an rvalue range is moved into it.
    template <class F, class Range>
        requires imap_callable<F, Range>
    IMapIterator<detail::lazy_item_t<F, Range>> imap(F&& f, Range&& items,
                                                     std::size_t chunksize = 1) {
        return detail::start_imap<false>(core_, std::forward<F>(f), std::forward<Range>(items),
                                         IMapOptions{.chunksize = chunksize}, true);
    }
    /// imap with chunksize and max_in_flight (0: the pool picks, 32..64 * size() in flight).
    template <class F, class Range>
        requires imap_callable<F, Range>
    IMapIterator<detail::lazy_item_t<F, Range>> imap(F&& f, Range&& items, IMapOptions options) {
        return detail::start_imap<false>(core_, std::forward<F>(f), std::forward<Range>(items),
                                         options, true);
    }
    /// imap over a braced list (copied into the iterator).
    template <class F, class T>
        requires imap_callable<F, std::vector<T>>
    IMapIterator<detail::lazy_item_t<F, std::vector<T>>> imap(F&& f, std::initializer_list<T> items,
                                                              std::size_t chunksize = 1) {
        return detail::start_imap<false>(core_, std::forward<F>(f), std::vector<T>(items),
                                         IMapOptions{.chunksize = chunksize}, true);
    }
    /// imap over a braced list with options.
    template <class F, class T>
        requires imap_callable<F, std::vector<T>>
    IMapIterator<detail::lazy_item_t<F, std::vector<T>>> imap(F&& f, std::initializer_list<T> items,
                                                              IMapOptions options) {
        return detail::start_imap<false>(core_, std::forward<F>(f), std::vector<T>(items),
                                         options, true);
    }
    /// Python's imap_unordered: as imap, but items come in completion order.
    template <class F, class Range>
        requires imap_callable<F, Range>
    IMapIterator<detail::lazy_item_t<F, Range>> imap_unordered(F&& f, Range&& items,
                                                               std::size_t chunksize = 1) {
        return detail::start_imap<false>(core_, std::forward<F>(f), std::forward<Range>(items),
                                         IMapOptions{.chunksize = chunksize}, false);
    }
    /// imap_unordered with chunksize and max_in_flight (0: the pool picks, 32..64 * size() in flight).
    template <class F, class Range>
        requires imap_callable<F, Range>
    IMapIterator<detail::lazy_item_t<F, Range>> imap_unordered(F&& f, Range&& items,
                                                               IMapOptions options) {
        return detail::start_imap<false>(core_, std::forward<F>(f), std::forward<Range>(items),
                                         options, false);
    }
    /// imap_unordered over a braced list (copied into the iterator).
    template <class F, class T>
        requires imap_callable<F, std::vector<T>>
    IMapIterator<detail::lazy_item_t<F, std::vector<T>>> imap_unordered(
        F&& f, std::initializer_list<T> items, std::size_t chunksize = 1) {
        return detail::start_imap<false>(core_, std::forward<F>(f), std::vector<T>(items),
                                         IMapOptions{.chunksize = chunksize}, false);
    }
    /// imap_unordered over a braced list with options.
    template <class F, class T>
        requires imap_callable<F, std::vector<T>>
    IMapIterator<detail::lazy_item_t<F, std::vector<T>>> imap_unordered(
        F&& f, std::initializer_list<T> items, IMapOptions options) {
        return detail::start_imap<false>(core_, std::forward<F>(f), std::vector<T>(items),
                                         options, false);
    }
    // ==== end of bulk work ===================================================================

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
    // Takes the unit of work (and counts the task) before the state is built: the locked
    // instructions then find no stores of the fresh state waiting (issue 15), and a refused
    // task never moves the caller's callable and arguments.
    template <class S, class... A>
    auto launch(A&&... a) {
        core_.acquire_task_unit();
        S* s = nullptr;
        try {
            s = new S(&core_, std::forward<A>(a)...);
        } catch (...) {
            core_.cancel_task_unit();
            throw;
        }
        AsyncResult<typename ResultOf<S>::type> handle{
            detail::StateRef<detail::ResultState<typename ResultOf<S>::type>>(s)};
        core_.enqueue_acquired(s);
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
