#pragma once
// Internal: the non-template core of a ThreadPool (threads, queue, callback loop,
// lifecycle, accounting). Implemented in src/pool_core.cpp; no Asio in this header.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <pypool/detail/spin.hpp>
#include <pypool/detail/state.hpp>
#include <pypool/function.hpp>
#include <pypool/options.hpp>

namespace boost::asio {
class execution_context;  // declared only: Asio stays out of this header
}  // namespace boost::asio

namespace pypool::detail {

struct Loop;  // the Asio io_context and its thread (src/loop.cpp)

/// Something that join()/terminate() must drive or stop: a live imap stream
/// (include/pypool/detail/imap_stream.hpp). The pool holds a reference while it is linked.
/// Lock order: a stream's own lock may be held while calling into the pool (remove_stream,
/// submit_stream, notify_helpers), never the other way round.
class StreamHook {
public:
    /// join(): read the rest of the input and submit it (runs on the joining thread, the
    /// pool's lock not held; the pool holds a reference meanwhile).
    virtual void drain_for_join() = 0;
    /// terminate(): stop reading input. Called with the pool's lock held: must not lock.
    virtual void on_terminate() noexcept = 0;
    /// join() finished (the stream was unlinked): never touch the pool again. Called
    /// without the pool's lock; may wait for a read in progress.
    virtual void on_detach() noexcept = 0;
    /// Reference counting of the stream (the pool's reference while linked).
    virtual void hook_add_ref() noexcept = 0;
    virtual void hook_release() noexcept = 0;
    StreamHook* hook_next_ = nullptr;
    StreamHook* hook_prev_ = nullptr;
    bool hook_linked_ = false;        // guarded by the pool's lock
    bool drained_for_join_ = false;   // guarded by the pool's lock

protected:
    ~StreamHook() = default;
};

enum class PoolState : std::uint8_t { run, close, terminate };
enum class StopKind : std::uint8_t { none, close, terminate, shutdown };

class PoolCore {
public:
    explicit PoolCore(PoolOptions options);
    ~PoolCore();
    PoolCore(const PoolCore&) = delete;
    PoolCore& operator=(const PoolCore&) = delete;

    std::size_t size() const noexcept { return workers_.size(); }
    /// This pool's id: unique in the process, never reused (unlike its address).
    std::uint64_t id() const noexcept { return id_; }

    // ---- submission ---------------------------------------------------------------
    /// Accepts a job into the queue and takes ownership. Throws ValueError/RuntimeError
    /// (the first stop's error) if the pool does not accept it; then ownership stays
    /// with the caller.
    void submit(Job* job);
    /// Accepts a batch of jobs linked through next_ (one lock); all or nothing.
    void submit_batch(Job* first, Job* last, std::size_t count);
    /// Throws the error submitting would throw now, if any (nothing is accepted).
    void check_accepting() const;
    /// Takes one extra unit of work (keeps join() waiting) if the pool accepts work;
    /// else throws like submit(). Release with release_unit().
    void acquire_unit();
    /// Takes the unit of work for one task and counts the task as submitted, before the
    /// caller builds it (the locked instructions then find no stores of the fresh task
    /// still pending); throws like submit(). Then exactly one of enqueue_acquired(job)
    /// and cancel_task_unit().
    void acquire_task_unit();
    /// Queues job (takes ownership) under the unit taken by acquire_task_unit().
    void enqueue_acquired(Job* job) noexcept;
    /// Gives back what acquire_task_unit() took (building the task failed).
    void cancel_task_unit() noexcept;

    // ---- the callback loop ---------------------------------------------------------
    /// Queues s->run_callbacks() on the loop; the caller holds a unit (s not ready). Every
    /// completion that needs the loop (a task's, a map's, a cancellation's, one run inline
    /// by a waiting worker) joins one stack linked through s->loop_next_, so callbacks run
    /// in completion order; a burst costs one Asio post. Allocates nothing.
    void post_callbacks(StateBase* s) noexcept;
    /// Posts fn to the loop while the caller holds a unit of work.
    void post_loop(Function<void()> fn) noexcept;
    /// Posts fn to the loop if it still runs; false (fn untouched) once join() finished.
    bool try_post_loop(Function<void()>& fn);
    /// Reports a throwing callback to on_callback_error (or stderr).
    void report_callback_error(std::exception_ptr e) noexcept;

    // ---- Asio executors (include/pypool/asio.hpp) ---------------------------------------
    // Accepted until join() has finished, whatever stopped the pool; afterwards they throw
    // the first stop's error and ownership stays with the caller.
    /// worker_executor: queues job as one task (takes a unit); after terminate() the job is
    /// discarded (its handler destroyed unrun) at once instead. job->run() does the task's
    /// accounting (note_started/note_ran/note_outcome, release_unit).
    void submit_executor_job(Job* job);
    /// loop_executor: job->run() on the callback thread, or job->discard() there if
    /// terminate() came first; the core does the accounting.
    void submit_loop_job(Job* job);
    /// Outstanding Asio work (a tracked executor): keeps join() waiting like a unit;
    /// release with release_unit(). Never throws.
    void add_work() noexcept { active_.fetch_add(1, std::memory_order_seq_cst); }
    /// The execution context of worker_executor (owned by the pool).
    boost::asio::execution_context& worker_context() noexcept;
    /// The execution context of loop_executor (the callback thread's io_context).
    boost::asio::execution_context& loop_context() noexcept;

    // ---- lifecycle -----------------------------------------------------------------
    void close();
    void terminate();
    void join();
    void shutdown(bool wait, bool cancel_futures);
    PoolState state() const noexcept { return state_.load(std::memory_order_acquire); }
    bool joined() const noexcept { return joined_.load(std::memory_order_acquire); }
    /// Links a live imap stream (takes a reference to it); throws like submit() if the
    /// pool does not accept work from the calling thread.
    void add_stream(StreamHook* h);
    /// Unlinks h if linked; true if it was (the caller then drops the pool's reference).
    bool remove_stream(StreamHook* h) noexcept;
    /// Chunks of a live imap stream, linked through next_ (all or nothing): accepted after
    /// close() from any thread (close() lets iterators go on reading) until join() has
    /// finished, never after terminate().
    void submit_stream(Job* first, Job* last, std::size_t count);

    // ---- thread identity ------------------------------------------------------------
    bool on_worker() const noexcept;
    bool on_loop() const noexcept;
    bool on_own_thread() const noexcept { return on_worker() || on_loop(); }
    /// The pool whose worker runs the calling thread, or nullptr.
    static PoolCore* current_worker_pool() noexcept;
    /// The pool whose callback thread is the calling thread, or nullptr.
    static PoolCore* current_loop_pool() noexcept;

    // ---- waiting on a pool thread ---------------------------------------------------------
    // A waiting worker never runs unrelated work on its stack (that work could block it
    // forever, issue 11 item 3). It runs the awaited task itself when that is still queued
    // (and the wait has no deadline), then blocks; while it blocks a spare thread
    // (compensation, as in Java's ForkJoinPool) keeps the pool's parallelism.
    /// On a worker of this pool waiting without a deadline: runs s itself if it is still
    /// queued (taken out of this worker's own queue, or claimed where it is). The caller
    /// holds a reference to s.
    void run_awaited(StateBase* s) noexcept;
    /// The calling thread of this pool (a worker or a spare) is about to block in a wait:
    /// wakes or starts a spare thread so that size() threads keep running jobs (at most
    /// max_spares spares; beyond that, or if no thread can be started, it blocks
    /// uncompensated; see max_spares in src/pool_core.cpp). Pair with end_blocking() (class
    /// Blocking does).
    void begin_blocking() noexcept;
    /// The blocked thread resumes; a spare that is now surplus retires after its job.
    void end_blocking() noexcept { blocked_.fetch_sub(1, std::memory_order_seq_cst); }
    /// begin_blocking() on the calling thread's pool if it is a pool thread (of any pool),
    /// end_blocking() at the end of the scope.
    class Blocking {
    public:
        Blocking() noexcept : p_(current_worker_pool()) {
            if (p_) p_->begin_blocking();
        }
        ~Blocking() {
            if (p_) p_->end_blocking();
        }
        Blocking(const Blocking&) = delete;
        Blocking& operator=(const Blocking&) = delete;

    private:
        PoolCore* p_;
    };
    /// On a thread of this pool: block (compensated) until done(ctx) or the deadline; true
    /// if done(ctx). Runs no job meanwhile. done is called under the pool's lock (it must
    /// not lock anything: an atomic read); whoever makes it true must then call
    /// notify_helpers() (used by imap).
    bool help_while_not(bool (*done)(const void* ctx) noexcept, const void* ctx,
                        std::optional<Clock::time_point> deadline);
    /// Wakes threads blocked in help_while_not.
    void notify_helpers() noexcept;

    // ---- wait-for cycles through the callback thread (issue 11 item 8) -------------------
    // The callback thread waits (no deadline) for a task T of this pool without callbacks;
    // T runs on a pool thread blocked (no deadline) waiting for U; ...; the last awaited
    // result's callback is queued on the loop (phase completing): nobody can ever go on.
    // The graph is kept under graph_m_ only for such untimed waits; the callback thread's
    // wait throws DeadlockError once the cycle exists (see loop_deadlocked()).
    /// An untimed wait of a pool thread on a result of this pool (registered while it lasts).
    struct WaitRecord {
        const StateBase* awaited = nullptr;
        const void* frames = nullptr;  // the jobs running on the waiting thread's stack
        WaitRecord* next = nullptr;
        WaitRecord* prev = nullptr;
    };
    /// The calling pool thread blocks (no deadline) for s; s has flag_waiters set already.
    void enter_wait(WaitRecord& r, const StateBase* s) noexcept;
    void leave_wait(WaitRecord& r) noexcept;
    /// The callback thread blocks (no deadline) for t (a result of this pool without
    /// callbacks; flag_waiters set); it parks on t's stripe.
    void loop_wait_begin(const StateBase* t) noexcept;
    void loop_wait_end() noexcept;
    /// The callback thread's current wait closes a wait-for cycle: it must throw.
    bool loop_deadlocked() const noexcept { return loop_deadlock_.load(std::memory_order_acquire); }

    // ---- accounting -------------------------------------------------------------------
    /// Releases one unit of work (safe from any thread). On a worker of this pool the
    /// release is deferred (up to deferred_units, flushed before the worker looks for work
    /// in vain, parks or blocks): one shared read-modify-write per batch instead of per task.
    void release_unit() noexcept;
    /// A loop handler posted with post_loop()/try_post_loop() has finished.
    void loop_handler_done() noexcept;
    // Counters live in per-thread shards (one cache line each: a worker's, the loop's, and
    // one for every other thread), so a task's bookkeeping never bounces a shared line.
    void note_started() noexcept {
        add_count(&Counters::started, 1);
    }
    void note_ran() noexcept {
        add_count(&Counters::ran, 1);
    }
    /// n queued jobs were cancelled: counted when they are cancelled, not when a worker
    /// reaches their nodes (which then counts nothing).
    void note_cancelled(std::size_t n = 1) noexcept {
        add_count(&Counters::cancelled, static_cast<std::ptrdiff_t>(n));
    }
    void note_outcome(bool ok) noexcept {
        add_count(ok ? &Counters::completed : &Counters::failed, 1);
    }
    PoolStats stats() const noexcept;

private:
    struct LocalQueue;  // a worker's own queue (below)
    /// The queue's placeholder node (Vyukov's intrusive MPSC queue needs one).
    struct StubJob final : Job {
        void run() noexcept override {}
        void discard() noexcept override {}
    };

    void worker_main(std::size_t index);
    void run_job(Job* j) noexcept;
    // ---- the queue: producers link in with one exchange and never block; consumers take
    // turns under pop_lock_ (held only to unlink one node).
    void push(Job* first, Job* last) noexcept;
    Job* pop() noexcept;
    Job* pop_locked() noexcept;
    Job* detach_queue() noexcept;
    /// Cheap hint (no lock): something may be queued (shared queue or a worker's own).
    bool maybe_jobs() const noexcept;
    /// Nothing queued anywhere and no producer between its exchange and its link (takes
    /// pop_lock_; seq_cst reads, paired with wake_for_jobs()).
    bool queue_empty() noexcept;
    /// The next job for worker `self`: its own queue (newest first), then the shared one
    /// (every 32nd time the other way round, so neither starves), then stealing the oldest
    /// job of another thread's queue (a worker's or a spare's).
    Job* next_job(std::size_t self) noexcept;
    /// Queues first..last (linked through next_) on the calling worker's own queue as far
    /// as it has room; returns the rest (nullptr if all fitted).
    Job* push_local(std::size_t self, Job* first) noexcept;
    /// Gives active_ the units the calling worker released lazily (see release_unit()).
    void flush_units(LocalQueue& q) noexcept;
    /// Wakes a parked thread for `count` new jobs: idle workers first, else helpers.
    void wake_for_jobs(std::size_t count) noexcept;
    /// Counts count accepted jobs (units, stats) and queues them; the caller checked
    /// that the pool accepts them.
    void enqueue(Job* first, Job* last, std::size_t count) noexcept;
    /// enqueue() for jobs already counted as submitted and queued.
    void enqueue_counted(Job* first, Job* last, std::size_t count) noexcept;
    /// Counts n jobs as submitted (so queued: see Counters; n < 0: takes them back).
    void count_submitted(std::ptrdiff_t n) noexcept;
    /// Who take_units_or_throw() admits once the pool no longer runs: tasks as
    /// accepts_locked() says; streams (submit_stream(): imap refills) from any thread until
    /// terminate() or the end of join(); Asio handlers until the end of join().
    enum class Admit { task, stream, handler };
    /// Takes count units if the pool admits this work now (lock-free while it runs); else
    /// throws like submit() and takes none.
    void take_units_or_throw(std::size_t count, Admit admit = Admit::task);
    static void discard_all(Job* j) noexcept;
    [[noreturn]] void throw_not_accepting() const;
    bool accepts_locked() const noexcept;
    void drain_streams();
    bool undrained_stream_locked() const noexcept;
    /// A spare thread's life: runs jobs while blocked threads need it, parks otherwise.
    void spare_main() noexcept;
    /// A surplus spare (its blocked thread resumed) offers its core to runnable threads
    /// before it starts a job (see src/pool_core.cpp).
    void yield_if_surplus() noexcept;
    /// A licensed spare runs jobs until it is surplus (or the pool stops).
    void spare_work() noexcept;
    /// The next job for a spare: its own queue (if it holds one), the shared queue, then
    /// stealing the oldest job of another thread's queue.
    Job* next_job_spare() noexcept;
    /// A working spare takes a free spare queue for the jobs its tasks submit, so fork-join
    /// under a spare runs as under a worker (if all are taken, it goes on without one).
    void claim_spare_queue() noexcept;
    /// The spare stops working: jobs left in its queue move to the shared queue, its
    /// deferred units go to active_, and the queue is free for the next spare.
    void release_spare_queue() noexcept;
    /// Starts one spare thread (m_ held); false if the thread could not be started.
    bool start_spare_locked() noexcept;
    /// A cycle through the loop exists now (graph_m_ held).
    bool loop_cycle_locked() const noexcept;
    /// If a cycle exists, marks the loop's wait deadlocked and wakes it (graph_m_ held).
    void check_loop_cycle_locked() noexcept;
    /// The loop's handler for the batch of completions (see post_callbacks).
    void drain_completions() noexcept;

    PoolOptions options_;
    std::uint64_t id_ = 0;  // set once the pool runs; see id()
    mutable std::mutex m_;             // lifecycle, parking, join
    std::condition_variable cv_;       // idle workers park here
    std::condition_variable helper_cv_;  // pool threads in help_while_not park here
    std::condition_variable spare_cv_;   // spare threads without a license park here
    std::condition_variable join_cv_;  // join() waits for active_ == 0
    // Parked (or about to park) threads; changed under m_, read by producers without it.
    std::atomic<std::size_t> idle_{0};     // idle workers on cv_
    // Compensation: blocked_ pool threads wait in a pypool wait; as many spares run jobs
    // (spare_working_, the licensed ones). blocked_ grows under m_ and shrinks anywhere.
    std::atomic<std::ptrdiff_t> blocked_{0};
    std::atomic<std::ptrdiff_t> spare_working_{0};  // changed under m_
    std::ptrdiff_t spare_idle_ = 0;      // spares parked on spare_cv_, not yet woken (m_)
    std::ptrdiff_t spare_tokens_ = 0;    // wake-ups handed to parked spares (m_)
    std::ptrdiff_t spare_starting_ = 0;  // spares started, not yet in their loop (m_)
    std::vector<std::thread> spares_;    // guarded by m_; joined by join()
    // The wait-for graph through the loop (see enter_wait).
    mutable std::mutex graph_m_;
    WaitRecord* waits_ = nullptr;  // guarded by graph_m_
    std::size_t nwaits_ = 0;       // guarded by graph_m_
    std::atomic<const StateBase*> loop_wait_{nullptr};  // changed under graph_m_
    std::atomic<bool> loop_deadlock_{false};             // changed under graph_m_
    bool stop_ = false;                // workers exit when the queue is empty, guarded by m_
    bool loop_closed_ = false;         // no more loop posts, guarded by m_
    std::atomic<PoolState> state_{PoolState::run};
    StopKind first_stop_ = StopKind::none;  // guarded by m_
    std::atomic<bool> joined_{false};
    std::atomic<bool> joining_{false};
    // accepted, unfinished work (tasks, loop handlers): a line of its own (join_m_'s alignas
    // ends it), written by every submission from outside the workers
    alignas(64) std::atomic<std::size_t> active_{0};
    alignas(64) std::mutex join_m_;  // serialises join()
    StreamHook* streams_ = nullptr;       // guarded by m_

    // Counters grow only (but callbacks): stats() derives queued (submitted - started -
    // cancelled) and running (started - ran), so a submission counts once.
    struct alignas(64) Counters {  // signed: a shard may go below zero, only sums count
        std::atomic<std::ptrdiff_t> submitted{0}, started{0}, ran{0}, completed{0}, failed{0},
            cancelled{0}, callbacks{0};
        bool solo = false;  // one thread writes this shard (a worker's, the loop's)
        /// Adds d to field f of this shard: a plain load and store where one thread writes
        /// it (stats() reads atomically), else a locked read-modify-write.
        void add(std::atomic<std::ptrdiff_t>& f, std::ptrdiff_t d) noexcept {
            if (solo)
                f.store(f.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
            else
                f.fetch_add(d, std::memory_order_relaxed);
        }
    };
    /// The calling thread's shard of this pool's counters.
    Counters& counters() noexcept;
    /// Adds d to counter f of the calling thread's shard.
    void add_count(std::atomic<std::ptrdiff_t> Counters::*f, std::ptrdiff_t d) noexcept {
        Counters& c = counters();
        c.add(c.*f, d);
    }
    // [0, n): workers, n: the loop, n + 1: other threads, n + 2: spare threads
    std::unique_ptr<Counters[]> shards_;
    std::size_t nshards_ = 0;

    /// A worker's own queue: the jobs its thread submits. The owner pushes and pops at the
    /// back (newest first, so fork-join recursion runs depth-first as in TBB); other threads
    /// steal at the front (oldest first: the biggest pieces). A spinlock guards the ring;
    /// it is held for a few loads and stores. After the workers' queues come as many spare
    /// queues, each held by one working spare thread at a time (claimed).
    struct alignas(64) LocalQueue {
        static constexpr std::size_t capacity = 256;
        SpinLock guard;
        std::atomic<std::size_t> size{0};  // back - front, readable without the lock
        std::size_t front = 0;             // guarded by guard
        std::size_t back = 0;
        // The owner's alone, on a line of their own (thieves write the line above):
        alignas(64) unsigned tick = 0;  // the owner's count of next_job() calls
        std::size_t unreleased = 0;     // units the owner released but active_ still counts
        std::atomic<bool> claimed{false};  // a spare queue's: a working spare holds it
        Job* ring[capacity] = {};
        void lock() noexcept { guard.lock(); }
        void unlock() noexcept { guard.unlock(); }
        Job* pop_back() noexcept;
        Job* pop_front() noexcept;
        /// Removes j if it is among the newest few jobs (the owner waits for it); true if
        /// it was there: the caller then owns the queue's reference.
        bool take(Job* j) noexcept;
    };
    std::unique_ptr<LocalQueue[]> locals_;  // [0, nworker_locals_): workers', then spares'
    /// The calling thread's own queue if it is a worker of this pool or a spare holding a
    /// spare queue, else null.
    LocalQueue* own_queue() noexcept;
    std::size_t nlocals_ = 0;
    std::size_t nworker_locals_ = 0;

    // The shared queue (Vyukov's intrusive MPSC queue, consumers serialised by pop_lock_):
    // jobs submitted by threads that are not workers of this pool.
    StubJob stub_;
    alignas(64) std::atomic<Job*> qtail_{&stub_};  // producers exchange it
    alignas(64) std::atomic<Job*> qhead_{&stub_};  // written under pop_lock_ only
    SpinLock pop_lock_;  // a std::mutex here cost W2 about a fifth of its rate (futex sleeps)

    // Completions whose callbacks the loop runs: a stack linked through loop_next_, drained
    // by one posted handler at a time; loop_busy() while that handler runs.
    alignas(64) std::atomic<StateBase*> completions_{nullptr};
    static StateBase* loop_busy() noexcept {  // a marker, never linked as a completion
        return reinterpret_cast<StateBase*>(alignof(StateBase));
    }

    std::vector<std::thread> workers_;
    std::unique_ptr<Loop> loop_;

    friend struct Loop;
};

}  // namespace pypool::detail
