#pragma once
/// @file
/// ProcessPool: Python's multiprocessing.Pool and concurrent.futures' ProcessPoolExecutor,
/// with the members, results and callbacks of ThreadPool, running tasks in worker
/// processes (crash isolation, killable tasks). Call pypool::process_main(argc, argv) as
/// the first line of main.

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <pypool/detail/pool_core.hpp>
#include <pypool/detail/process_wire.hpp>
#include <pypool/detail/task.hpp>
#include <pypool/errors.hpp>
#include <pypool/function.hpp>
#include <pypool/map.hpp>
#include <pypool/options.hpp>
#include <pypool/result.hpp>

namespace pypool {

/// How a ProcessPool starts its worker processes (Python's start methods).
enum class StartMethod {
    forkserver,  ///< the program re-executed once as a single-threaded server that forks workers
    spawn,       ///< the program re-executed for every worker
    fork,        ///< fork() of the calling process (fastest; unsafe if threads hold locks)
};

/// How a ProcessPool is built (Python: Pool(processes, initializer, maxtasksperchild)).
struct ProcessPoolOptions {
    /// Worker processes; unset -> max(1, hardware_concurrency()); < 1 -> ValueError.
    std::optional<int> processes = {};
    /// Runs in every worker process before its first task; if it throws or kills the
    /// process, the constructor throws RuntimeError naming the cause.
    void (*initializer)() = nullptr;
    /// A worker that ran this many tasks (a map chunk is one) exits and is replaced;
    /// 0 -> ValueError.
    std::optional<std::size_t> max_tasks_per_child = {};
    /// A task running longer is killed with its worker (TimeoutError); <= 0 -> ValueError.
    std::optional<std::chrono::milliseconds> task_timeout = {};
    /// How workers start.
    StartMethod start_method = StartMethod::forkserver;
    /// Worker processes are named "<prefix>-<i>" (prctl), the callback thread "<prefix>-loop".
    std::string name_prefix = "pypool";
    /// Told (on the callback thread) when a callback throws; unset: one line on stderr.
    std::function<void(std::exception_ptr)> on_callback_error = {};
};

/// An exception from a worker process whose type does not come back as itself:
/// what() is "<demangled type>: <what()>".
class RemoteError : public std::runtime_error {
public:
    /// Makes the error for an exception of type `type_name` with message `message` (what()
    /// is the type alone when the message is empty: a thrown value not derived from
    /// std::exception).
    RemoteError(const std::string& type_name, const std::string& message)
        : std::runtime_error(message.empty() ? type_name : type_name + ": " + message),
          type_(type_name) {}
    /// The demangled type of the original exception ("int" for a thrown int).
    const std::string& type_name() const noexcept { return type_; }

private:
    std::string type_;
};

/// An argument or result that could not be encoded or decoded (cereal's error, or one
/// thrown by the type's own serialize/load); fails that task only.
class SerializationError : public std::runtime_error {
public:
    /// Makes the error with the given message.
    explicit SerializationError(const std::string& what) : std::runtime_error(what) {}
};

/// A worker process died (signal, abort, _exit, killed) while running the task, or the
/// pool can no longer start workers (Python's name).
class BrokenProcessPool : public std::runtime_error {
public:
    /// Makes the error with the given message.
    explicit BrokenProcessPool(const std::string& what) : std::runtime_error(what) {}
};

/// Python's `if __name__ == "__main__":`. Call it as the first line of main: in an ordinary
/// run it returns at once; in a process a ProcessPool started (a worker or the fork
/// server) it serves and never returns.
void process_main(int argc, char** argv);

/// Exceptions of type E thrown in a worker come back as E (built from their what());
/// call it in the parent before the result arrives. E must be constructible from a
/// std::string.
template <class E>
void register_exception() {
    static_assert(std::is_constructible_v<E, std::string>,
                  "register_exception<E>: E must be constructible from a std::string");
    detail::register_exception_factory(typeid(E), [](const std::string& what) {
        return std::make_exception_ptr(E(what));
    });
}

namespace detail {

/// The processes of one ProcessPool (src/process/): slots, channels, start methods.
class ProcessBackend;
struct ProcessBackendDeleter {
    void operator()(ProcessBackend* b) const noexcept;
};
/// Validates the options and prepares the slots (starts nothing yet). Throws ValueError,
/// RuntimeError (in a helper process that ran past process_main).
ProcessBackend* make_process_backend(const ProcessPoolOptions& options);
/// The PoolOptions of the pool's core: its initializer starts the calling worker
/// thread's process (throws RuntimeError if it cannot).
PoolOptions process_core_options(ProcessBackend* b, const ProcessPoolOptions& options);
/// terminate(): kill every worker process (running tasks end as cancelled).
void process_kill_all(ProcessBackend* b) noexcept;
/// join(): close every channel, wait for every worker to exit and reap it.
void process_reap_all(ProcessBackend* b) noexcept;
/// Throws BrokenProcessPool once a replacement worker could not start (the pool is broken).
void process_check_usable(const ProcessBackend* b);

template <class F>
using remote_fn_t = RemoteFn<std::decay_t<F>>;

/// Tag of ProcessPool's constructor for other transports (mpi::Executor).
struct remote_transport_t {
    explicit remote_transport_t() = default;
};

}  // namespace detail

/// A pool of worker processes plus, in the calling process, one proxy thread per worker
/// and one callback thread. Every member of ThreadPool, with the same semantics and result
/// types; callables are function pointers or capture-less lambdas, arguments and results
/// travel through cereal.
class ProcessPool {
public:
    /// A pool of max(1, hardware_concurrency()) worker processes (forkserver).
    ProcessPool() : ProcessPool(ProcessPoolOptions{}) {}
    /// A pool of `processes` workers; < 1: ValueError("Number of processes must be at least 1").
    explicit ProcessPool(int processes)
        : ProcessPool(ProcessPoolOptions{.processes = processes}) {}
    /// A pool built from options. Throws ValueError (bad option), RuntimeError (a worker
    /// could not start: its initializer threw or died, or process_main is missing).
    explicit ProcessPool(ProcessPoolOptions options)
        : backend_(detail::make_process_backend(options)),
          core_(std::make_unique<detail::PoolCore>(
              detail::process_core_options(backend_.get(), options))) {}
    /// If still running: close() then join(); otherwise join(). Every worker is reaped.
    ~ProcessPool() {
        // core_ drains first (members are destroyed in reverse order); then the workers go.
        core_.reset();
    }
    ProcessPool(const ProcessPool&) = delete;
    ProcessPool& operator=(const ProcessPool&) = delete;

    /// Number of worker processes. Never throws.
    std::size_t size() const noexcept { return core_->size(); }
    /// Counters taken now (see PoolStats). Never throws.
    PoolStats stats() const noexcept { return core_->stats(); }

    // ---- multiprocessing.pool: single tasks ----------------------------------------------

    /// Runs f(args...) in a worker process and returns its result (blocks). Rethrows what f
    /// threw (see RemoteError), BrokenProcessPool if the worker died, TimeoutError if
    /// task_timeout passed; throws if not accepting.
    template <class F, class... Args>
    detail::process_result_t<F, Args...> apply(F&& f, std::tuple<Args...> args = {}) {
        return apply_async(std::forward<F>(f), std::move(args)).get();
    }

    /// Queues f(args...) and returns its AsyncResult at once; callbacks run on the callback
    /// thread of this process. Throws ValueError/RuntimeError if the pool does not accept work.
    template <class F, class... Args>
    AsyncResult<detail::process_result_t<F, Args...>> apply_async(
        F&& f, std::tuple<Args...> args = {},
        Callbacks<detail::process_result_t<F, Args...>> cb = {}) {
        static_assert(detail::check_remote_callable<std::decay_t<F>>());
        static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                      "pypool::ProcessPool: the callable cannot be called with these arguments");
        detail::process_check_usable(backend_.get());
        using R = detail::process_result_t<F, Args...>;
        using Tuple = std::tuple<std::decay_t<Args>...>;
        using Fn = detail::remote_fn_t<F>;
        std::uint32_t flags = 0;
        if (cb.callback) flags |= detail::flag_callback;
        if (cb.error_callback) flags |= detail::flag_error_callback;
        if (flags != 0) {
            return launch<R>(new detail::TaskState<R, Fn, Tuple, true>(
                core_.get(), Fn{f}, std::move(args), std::move(cb), flags));
        }
        detail::NoCallbacks none;
        return launch<R>(new detail::TaskState<R, Fn, Tuple, false>(
            core_.get(), Fn{f}, std::move(args), std::move(none), 0));
    }

    // ---- concurrent.futures ---------------------------------------------------------------

    /// Queues f(args...) and returns its Future at once. Throws RuntimeError("cannot
    /// schedule new futures after shutdown") after shutdown().
    template <class F, class... Args>
    AsyncResult<detail::process_result_t<F, Args...>> submit(F&& f, Args&&... args) {
        return apply_async(std::forward<F>(f),
                           std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...));
    }

    /// close(); with cancel_futures also cancels every queued task; with wait also join().
    void shutdown(bool wait = true, bool cancel_futures = false) {
        core_->shutdown(wait, cancel_futures);
        if (wait) detail::process_reap_all(backend_.get());
    }

    // ---- bulk work ------------------------------------------------------------------------

    /// Python's map: f over every element (read completely first), results in input order;
    /// blocks. chunksize 0: ceil(n / (4 * size())). Throws as ThreadPool::map.
    template <class F, class Range>
    std::vector<map_item_t<F, Range>> map(F&& f, Range&& items, std::size_t chunksize = 0) {
        static_assert(detail::check_remote_callable<std::decay_t<F>>());
        detail::process_check_usable(backend_.get());
        return detail::run_map<false, map_item_t<F, Range>>(
            *core_, detail::remote_fn_t<F>{f}, std::forward<Range>(items), chunksize);
    }
    /// map over a braced list: pool.map(f, {1, 2, 3}).
    template <class F, class T>
    std::vector<map_item_t<F, std::initializer_list<T>&>> map(F&& f, std::initializer_list<T> items,
                                                              std::size_t chunksize = 0) {
        static_assert(detail::check_remote_callable<std::decay_t<F>>());
        detail::process_check_usable(backend_.get());
        return detail::run_map<false, map_item_t<F, std::initializer_list<T>&>>(
            *core_, detail::remote_fn_t<F>{f}, items, chunksize);
    }
    /// Python's map_async: as map, but returns a MapResult at once.
    template <class F, class Range>
    MapResult<detail::async_item_t<F, Range>> map_async(
        F&& f, Range&& items, MapOptions<detail::async_item_t<F, Range>> options = {}) {
        static_assert(detail::check_remote_callable<std::decay_t<F>>());
        detail::process_check_usable(backend_.get());
        return detail::start_map<false, false>(*core_, detail::remote_fn_t<F>{f},
                                               std::forward<Range>(items), std::move(options));
    }
    /// map_async over a braced list (copied into the call).
    template <class F, class T>
    MapResult<detail::async_item_t<F, std::vector<T>>> map_async(
        F&& f, std::initializer_list<T> items,
        MapOptions<detail::async_item_t<F, std::vector<T>>> options = {}) {
        static_assert(detail::check_remote_callable<std::decay_t<F>>());
        detail::process_check_usable(backend_.get());
        return detail::start_map<false, false>(*core_, detail::remote_fn_t<F>{f},
                                               std::vector<T>(items), std::move(options));
    }
    /// Python's starmap: std::apply(f, element) for every tuple-like element; as map.
    template <class F, class Range>
    std::vector<starmap_item_t<F, Range>> starmap(F&& f, Range&& tuples,
                                                  std::size_t chunksize = 0) {
        static_assert(detail::check_remote_callable<std::decay_t<F>>());
        detail::process_check_usable(backend_.get());
        return detail::run_map<true, starmap_item_t<F, Range>>(
            *core_, detail::remote_fn_t<F>{f}, std::forward<Range>(tuples), chunksize);
    }
    /// Python's starmap_async: as map_async with std::apply(f, element).
    template <class F, class Range>
    MapResult<detail::async_staritem_t<F, Range>> starmap_async(
        F&& f, Range&& tuples, MapOptions<detail::async_staritem_t<F, Range>> options = {}) {
        static_assert(detail::check_remote_callable<std::decay_t<F>>());
        detail::process_check_usable(backend_.get());
        return detail::start_map<true, false>(*core_, detail::remote_fn_t<F>{f},
                                              std::forward<Range>(tuples), std::move(options));
    }

    /// Python's imap: a lazy iterator of f(element) in input order (see ThreadPool::imap).
    template <class F, class Range>
    IMapIterator<detail::lazy_item_t<F, Range>> imap(F&& f, Range&& items,
                                                     std::size_t chunksize = 1) {
        return imap(std::forward<F>(f), std::forward<Range>(items),
                    IMapOptions{.chunksize = chunksize});
    }
    /// imap with chunksize and max_in_flight.
    template <class F, class Range>
    IMapIterator<detail::lazy_item_t<F, Range>> imap(F&& f, Range&& items, IMapOptions options) {
        static_assert(detail::check_remote_callable<std::decay_t<F>>());
        detail::process_check_usable(backend_.get());
        return detail::start_imap<false>(*core_, detail::remote_fn_t<F>{f},
                                         std::forward<Range>(items), options, true);
    }
    /// imap over a braced list (copied into the iterator).
    template <class F, class T>
    IMapIterator<detail::lazy_item_t<F, std::vector<T>>> imap(F&& f, std::initializer_list<T> items,
                                                              std::size_t chunksize = 1) {
        return imap(std::forward<F>(f), std::vector<T>(items), IMapOptions{.chunksize = chunksize});
    }
    /// imap over a braced list with options.
    template <class F, class T>
    IMapIterator<detail::lazy_item_t<F, std::vector<T>>> imap(F&& f, std::initializer_list<T> items,
                                                              IMapOptions options) {
        return imap(std::forward<F>(f), std::vector<T>(items), options);
    }
    /// Python's imap_unordered: as imap, items in completion order.
    template <class F, class Range>
    IMapIterator<detail::lazy_item_t<F, Range>> imap_unordered(F&& f, Range&& items,
                                                               std::size_t chunksize = 1) {
        return imap_unordered(std::forward<F>(f), std::forward<Range>(items),
                              IMapOptions{.chunksize = chunksize});
    }
    /// imap_unordered with chunksize and max_in_flight.
    template <class F, class Range>
    IMapIterator<detail::lazy_item_t<F, Range>> imap_unordered(F&& f, Range&& items,
                                                               IMapOptions options) {
        static_assert(detail::check_remote_callable<std::decay_t<F>>());
        detail::process_check_usable(backend_.get());
        return detail::start_imap<false>(*core_, detail::remote_fn_t<F>{f},
                                         std::forward<Range>(items), options, false);
    }
    /// imap_unordered over a braced list (copied into the iterator).
    template <class F, class T>
    IMapIterator<detail::lazy_item_t<F, std::vector<T>>> imap_unordered(
        F&& f, std::initializer_list<T> items, std::size_t chunksize = 1) {
        return imap_unordered(std::forward<F>(f), std::vector<T>(items),
                              IMapOptions{.chunksize = chunksize});
    }
    /// imap_unordered over a braced list with options.
    template <class F, class T>
    IMapIterator<detail::lazy_item_t<F, std::vector<T>>> imap_unordered(
        F&& f, std::initializer_list<T> items, IMapOptions options) {
        return imap_unordered(std::forward<F>(f), std::vector<T>(items), options);
    }

    // ---- lifecycle ---------------------------------------------------------------------------

    /// Accept no new tasks from outside the pool; queued work still runs. Never throws.
    void close() { core_->close(); }
    /// Complete every queued task as cancelled and kill the worker processes (running tasks
    /// end as cancelled); returns without waiting. Never throws.
    void terminate() {
        core_->terminate();
        detail::process_kill_all(backend_.get());
    }
    /// Waits until every task and callback has finished and every worker process exited
    /// and was reaped. Throws ValueError("Pool is still running") before close()/terminate(),
    /// DeadlockError on a thread of this pool.
    void join() {
        core_->join();
        detail::process_reap_all(backend_.get());
    }

    /// Internal: the shared core (used by the futures header).
    detail::PoolCore& detail_core() noexcept { return *core_; }

protected:
    /// Seam for another transport under this same front (pypool::mpi::Executor): no worker
    /// processes; core_options' initializer binds each proxy thread to its RemoteChannel
    /// (detail/remote_channel.hpp). Throws what the core's constructor throws.
    ProcessPool(detail::remote_transport_t, PoolOptions core_options)
        : core_(std::make_unique<detail::PoolCore>(std::move(core_options))) {}

private:
    template <class R, class S>
    AsyncResult<R> launch(S* s) {
        AsyncResult<R> handle{detail::StateRef<detail::ResultState<R>>(s)};
        try {
            core_->submit(s);
        } catch (...) {
            s->release();  // the queue's reference; the handle frees the state
            throw;
        }
        return handle;
    }

    // Declared first: the processes outlive the core, whose threads are their proxies.
    std::unique_ptr<detail::ProcessBackend, detail::ProcessBackendDeleter> backend_;
    std::unique_ptr<detail::PoolCore> core_;
};

}  // namespace pypool
