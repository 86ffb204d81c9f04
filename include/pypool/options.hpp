#pragma once
/// @file
/// Plain option and statistics structs: PoolOptions, Callbacks, MapOptions, IMapOptions, PoolStats.

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <pypool/function.hpp>

namespace pypool {

/// How a ThreadPool is built (Python: ThreadPool(processes, initializer)).
struct PoolOptions {
    /// Worker threads; unset -> max(1, hardware_concurrency()); < 1 -> ValueError.
    std::optional<int> processes = {};
    /// Runs once in every worker before its first task; if it throws, the constructor throws it.
    std::function<void()> initializer = {};
    /// Workers are named "<prefix>-<i>", the callback thread "<prefix>-loop".
    std::string thread_name_prefix = "pypool";
    /// Told (on the callback thread) when a callback throws; unset: one line on stderr.
    std::function<void(std::exception_ptr)> on_callback_error = {};
};

/// The callbacks of apply_async: both run on the callback thread, the result becomes
/// ready after the one called has returned.
template <class R>
struct Callbacks {
    /// Called with the value when the task succeeded.
    Function<void(const R&)> callback = {};
    /// Called with the exception when the task failed or was cancelled.
    Function<void(std::exception_ptr)> error_callback = {};
};

/// Callbacks of a task returning void: callback takes no argument.
template <>
struct Callbacks<void> {
    /// Called when the task succeeded.
    Function<void()> callback = {};
    /// Called with the exception when the task failed or was cancelled.
    Function<void(std::exception_ptr)> error_callback = {};
};

/// Options of map_async / starmap_async.
template <class Item>
struct MapOptions {
    /// Items per task; 0 -> Python's rule ceil(len / (4 * size())).
    std::size_t chunksize = 0;
    /// Called once with all results, in input order, on the callback thread.
    Function<void(const std::vector<Item>&)> callback = {};
    /// Called with the exception of the lowest failing item, on the callback thread.
    Function<void(std::exception_ptr)> error_callback = {};
};

/// Options of imap / imap_unordered.
struct IMapOptions {
    /// Items per task; 0 -> ValueError("Chunksize must be 1+, not 0").
    std::size_t chunksize = 1;
    /// Chunks submitted but not yet consumed; 0 -> the pool picks: 32..64 * size(), refilled in batches.
    std::size_t max_in_flight = 0;
};

/// Counters of a pool, in tasks (one apply_async/submit/async_apply, one map chunk, one
/// handler posted to worker_executor).
struct PoolStats {
    std::size_t submitted = 0;          ///< tasks accepted
    std::size_t completed = 0;          ///< tasks that succeeded
    std::size_t failed = 0;             ///< tasks that threw, or whose callback threw
    std::size_t cancelled = 0;          ///< tasks cancelled before they started
    std::size_t queued = 0;             ///< tasks waiting for a worker
    std::size_t running = 0;            ///< tasks running on a worker
    std::size_t callbacks_pending = 0;  ///< handlers queued or running on the callback thread
};

}  // namespace pypool
