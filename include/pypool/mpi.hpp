#pragma once
/// @file
/// pypool::mpi::Executor: mpi4py.futures' MPICommExecutor in C++. Every rank of a program
/// started with `mpirun -n N ./app` builds one; on the root (rank 0) it is a pool with the
/// members and result types of ProcessPool whose workers are the other N - 1 ranks; on the
/// other ranks the constructor serves tasks until the root's Executor shuts down, and the
/// Executor then converts to false. Link with libpypool-mpi (Meson: dependency('pypool-mpi'),
/// pkg-config: pypool-mpi, CMake: pypool::mpi). This header does not include <mpi.h>.

#include <exception>
#include <functional>
#include <memory>
#include <string>

#include <pypool/process.hpp>

namespace pypool::mpi {

/// How an Executor is built (the options of ProcessPool that make sense over ranks).
struct ExecutorOptions {
    /// The root's proxy threads are named "<prefix>-<i>", its callback thread "<prefix>-loop".
    std::string name_prefix = "pypool";
    /// Told (on the root's callback thread) when a callback throws; unset: one line on stderr.
    std::function<void(std::exception_ptr)> on_callback_error = {};
};

namespace detail {

/// The MPI side of one Executor (src/mpi/): MPI_Init_thread / MPI_Finalize, the
/// communicator, one channel per worker rank, and the worker ranks' serve loop.
class Session;
struct SessionDeleter {
    void operator()(Session* s) const noexcept;
};
/// Initialises MPI (if not yet) and, on a worker rank, serves tasks until the root shuts
/// down. Throws ValueError with one rank only (no worker rank), RuntimeError if the root
/// is not granted MPI_THREAD_MULTIPLE.
Session* make_session(int& argc, char**& argv);
/// The core options of the pool on this rank: on the root its N - 1 proxy threads, each
/// bound to the channel of one worker rank; elsewhere one thread whose calls throw.
pypool::PoolOptions session_core_options(Session* s, const ExecutorOptions& o);
bool session_is_root(const Session* s) noexcept;
int session_rank(const Session* s) noexcept;
int session_ranks(const Session* s) noexcept;
/// terminate(): calls waiting on a rank give up (their tasks end cancelled).
void session_terminate(Session* s) noexcept;
/// Root: waits for what the ranks still run, then tells every worker rank to return.
void session_release_ranks(Session* s) noexcept;

/// Base-from-member: the session exists (MPI initialised, worker ranks served) before
/// the ProcessPool front is built, and is finalised after it is gone.
struct SessionHolder {
    SessionHolder(int& argc, char**& argv) : session_(make_session(argc, argv)) {}
    std::unique_ptr<Session, SessionDeleter> session_;
};

}  // namespace detail

/// mpi4py.futures' MPICommExecutor over MPI_COMM_WORLD: build one on every rank. On the
/// root, every member of ProcessPool (submit, apply/apply_async with callbacks, map,
/// map_async, starmap, imap, imap_unordered, close, terminate, join, shutdown, stats)
/// with the same semantics and result types, the workers being ranks 1 .. N-1. Callables
/// are named by module and offset, so every rank must run the same program.
class Executor : private detail::SessionHolder, public ProcessPool {
public:
    /// MPI_Init_thread(MPI_THREAD_MULTIPLE) unless MPI is initialised already. On a worker
    /// rank, serves tasks until the root's Executor shuts down, then returns (the
    /// Executor is false). Throws ValueError when the job has one rank ("run it with
    /// mpirun -n N"), RuntimeError if the root is not granted MPI_THREAD_MULTIPLE.
    Executor(int& argc, char**& argv, ExecutorOptions options = {})
        : detail::SessionHolder(argc, argv),
          ProcessPool(pypool::detail::remote_transport_t{},
                      detail::session_core_options(session_.get(), options)) {}
    /// Root: close() and drain as ProcessPool does, then release the worker ranks. Every
    /// rank: MPI_Finalize (if the Executor initialised MPI).
    ~Executor() = default;
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    /// True on the root (where tasks are submitted), false on worker ranks (which have
    /// served by the time the constructor returns). Never throws.
    explicit operator bool() const noexcept { return detail::session_is_root(session_.get()); }
    /// This process's rank in MPI_COMM_WORLD. Never throws.
    int rank() const noexcept { return detail::session_rank(session_.get()); }
    /// Number of worker ranks on the root (ranks - 1), 0 on a worker rank. Never throws.
    std::size_t size() const noexcept {
        return *this ? static_cast<std::size_t>(detail::session_ranks(session_.get()) - 1) : 0;
    }

    /// As ProcessPool::shutdown; with wait, the worker ranks are released (their
    /// Executor constructors return).
    void shutdown(bool wait = true, bool cancel_futures = false) {
        ProcessPool::shutdown(wait, cancel_futures);
        if (wait) detail::session_release_ranks(session_.get());
    }
    /// Queued tasks end cancelled; a task already running on a rank cannot be stopped
    /// (that would end the job): it runs to its end there, and its result is dropped (the
    /// task ends cancelled). Returns without waiting. Never throws.
    void terminate() {
        detail::session_terminate(session_.get());
        ProcessPool::terminate();
    }
    /// As ProcessPool::join, then the worker ranks are released.
    void join() {
        ProcessPool::join();
        detail::session_release_ranks(session_.get());
    }
};

}  // namespace pypool::mpi
