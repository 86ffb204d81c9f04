// The pool's threads, queue, lifecycle and accounting.
#include <utility>  // before Asio (see TOOLCHAIN.md)

#include <boost/asio/post.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include <pypool/detail/pool_core.hpp>
#include <pypool/errors.hpp>

#include "loop.hpp"
#include "registry.hpp"

namespace pypool::detail {
namespace {
thread_local PoolCore* tls_worker_pool = nullptr;
thread_local PoolCore* tls_loop_pool = nullptr;
thread_local std::size_t tls_worker_index = 0;

int resolve_processes(const PoolOptions& o) {
    if (o.processes) {
        if (*o.processes < 1) throw ValueError("Number of processes must be at least 1");
        return *o.processes;
    }
    const unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : static_cast<int>(hc);
}
}  // namespace

std::mutex& registry_mutex() {
    static std::mutex m;
    return m;
}
std::unordered_set<const PoolCore*>& registry() {
    static std::unordered_set<const PoolCore*> r;
    return r;
}

PoolCore::PoolCore(PoolOptions options) : options_(std::move(options)) {
    const int n = resolve_processes(options_);
    loop_ = std::make_unique<Loop>();
    nshards_ = static_cast<std::size_t>(n) + 2;
    shards_ = std::make_unique<Counters[]>(nshards_);

    // Start the workers; each runs the initializer and reports before taking tasks.
    std::mutex init_m;
    std::condition_variable init_cv;
    int reported = 0;
    std::exception_ptr init_error;
    auto stop_all = [&] {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : workers_) t.join();
        workers_.clear();
    };
    workers_.reserve(static_cast<std::size_t>(n));
    try {
        for (int i = 0; i < n; ++i) {
            workers_.emplace_back([this, i, &init_m, &init_cv, &reported, &init_error] {
                set_thread_name(options_.thread_name_prefix, "-" + std::to_string(i));
                tls_worker_pool = this;
                tls_worker_index = static_cast<std::size_t>(i);
                std::exception_ptr err;
                if (options_.initializer) {
                    try {
                        options_.initializer();
                    } catch (...) {
                        err = std::current_exception();
                    }
                }
                {
                    std::lock_guard lk(init_m);
                    if (err && !init_error) init_error = err;
                    ++reported;
                    // Notify under the lock: once it sees the count, the constructor may
                    // return and destroy init_cv (it lives on its stack).
                    init_cv.notify_all();
                }
                if (!err) worker_main(static_cast<std::size_t>(i));
            });
        }
    } catch (...) {
        {
            std::unique_lock lk(init_m);
            init_cv.wait(lk, [&] { return reported == static_cast<int>(workers_.size()); });
        }
        stop_all();
        throw;
    }
    {
        std::unique_lock lk(init_m);
        init_cv.wait(lk, [&] { return reported == n; });
    }
    if (init_error) {
        stop_all();
        std::rethrow_exception(init_error);
    }
    try {
        loop_->thread = std::thread([this] {
            set_thread_name(options_.thread_name_prefix, "-loop");
            tls_loop_pool = this;
            loop_->ioc.run();  // handlers catch everything themselves
        });
    } catch (...) {
        stop_all();
        throw;
    }
    std::lock_guard lk(registry_mutex());
    registry().insert(this);
}

PoolCore::~PoolCore() {
    if (on_own_thread()) {
        std::fputs("pypool: a ThreadPool was destroyed on one of its own threads; "
                   "this cannot work (std::terminate)\n",
                   stderr);
        std::terminate();
    }
    if (state() == PoolState::run) close();
    join();
    std::lock_guard lk(registry_mutex());
    registry().erase(this);
}

// ---- thread identity -----------------------------------------------------------------
bool PoolCore::on_worker() const noexcept { return tls_worker_pool == this; }
bool PoolCore::on_loop() const noexcept { return tls_loop_pool == this; }
PoolCore* PoolCore::current_worker_pool() noexcept { return tls_worker_pool; }
PoolCore* PoolCore::current_loop_pool() noexcept { return tls_loop_pool; }

// ---- submission ------------------------------------------------------------------------
bool PoolCore::accepts_locked() const noexcept {
    switch (state_.load(std::memory_order_relaxed)) {
        case PoolState::run:
            return true;
        case PoolState::close:  // work from inside the pool until join() has drained it
            return !loop_closed_ && on_own_thread();
        case PoolState::terminate:
            return false;
    }
    return false;
}

void PoolCore::throw_not_accepting() const {
    if (first_stop_ == StopKind::shutdown)
        throw RuntimeError("cannot schedule new futures after shutdown");
    throw ValueError("Pool not running");
}

void PoolCore::check_accepting() const {
    std::lock_guard lk(m_);
    if (!accepts_locked()) throw_not_accepting();
}

void PoolCore::acquire_unit() {
    std::lock_guard lk(m_);
    if (!accepts_locked()) throw_not_accepting();
    active_.fetch_add(1, std::memory_order_seq_cst);
}

void PoolCore::submit(Job* job) {
    job->next_ = nullptr;
    submit_batch(job, job, 1);
}

void PoolCore::enqueue_locked(Job* first, Job* last, std::size_t count) noexcept {
    active_.fetch_add(count, std::memory_order_seq_cst);
    Counters& c = counters();
    const auto n = static_cast<std::ptrdiff_t>(count);
    c.submitted.fetch_add(n, std::memory_order_relaxed);
    c.queued.fetch_add(n, std::memory_order_relaxed);
    last->next_ = nullptr;
    if (tail_)
        tail_->next_ = first;
    else
        head_ = first;
    tail_ = last;
    has_jobs_.store(true, std::memory_order_relaxed);
}

void PoolCore::submit_batch(Job* first, Job* last, std::size_t count) {
    bool wake = false;
    {
        std::lock_guard lk(m_);
        if (!accepts_locked()) throw_not_accepting();
        enqueue_locked(first, last, count);
        wake = idle_ > 0;
    }
    if (wake) {
        if (count == 1)
            cv_.notify_one();
        else
            cv_.notify_all();
    }
}

void PoolCore::submit_stream(Job* job) {
    bool wake = false;
    {
        std::lock_guard lk(m_);
        if (state_.load(std::memory_order_relaxed) == PoolState::terminate || loop_closed_)
            throw_not_accepting();
        enqueue_locked(job, job, 1);
        wake = idle_ > 0;
    }
    if (wake) cv_.notify_one();
}

Job* PoolCore::try_pop_locked() noexcept {
    Job* j = head_;
    if (j) {
        head_ = j->next_;
        if (!head_) {
            tail_ = nullptr;
            has_jobs_.store(false, std::memory_order_relaxed);
        }
        j->next_ = nullptr;
    }
    return j;
}

Job* PoolCore::detach_queue_locked() noexcept {
    Job* j = head_;
    head_ = tail_ = nullptr;
    has_jobs_.store(false, std::memory_order_relaxed);
    return j;
}

void PoolCore::discard_all(Job* j) noexcept {
    while (j) {
        Job* next = j->next_;
        j->next_ = nullptr;
        j->discard();
        j = next;
    }
}

void PoolCore::run_job(Job* j) noexcept { j->run(); }

// An idle worker first spins a few microseconds (a futex wake-up costs 10-20 us here),
// yielding the core to runnable threads, then parks on cv_. Submitters notify only parked
// workers, so a busy pool makes no system call per task.
void PoolCore::spin_for_jobs() const noexcept {
    for (int i = 0; i < 256; ++i) {
        if (has_jobs_.load(std::memory_order_relaxed)) return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    for (int i = 0; i < 16; ++i) {
        if (has_jobs_.load(std::memory_order_relaxed)) return;
        std::this_thread::yield();
    }
}

void PoolCore::worker_main(std::size_t /*index*/) {
    for (;;) {
        Job* j = nullptr;
        {
            std::unique_lock lk(m_);
            bool spun = false;
            while (!(j = try_pop_locked())) {
                if (stop_) return;  // stopping and nothing left
                if (!spun) {
                    lk.unlock();
                    spin_for_jobs();
                    lk.lock();
                    spun = true;
                    continue;
                }
                ++idle_;
                cv_.wait(lk);
                --idle_;
                spun = false;
            }
        }
        run_job(j);
    }
}

bool PoolCore::help_until(const StateBase* s, std::optional<Clock::time_point> deadline) {
    auto* ms = const_cast<StateBase*>(s);
    // Run the awaited task itself if it is still queued: fork-join recursion then nests
    // only as deep as the program does (helping with the queue's oldest job instead nests
    // one frame per queued task and overflowed the stack in recursive Fibonacci).
    ms->run_inline();
    for (;;) {
        if (s->is_ready()) return true;
        Job* j = nullptr;
        {
            std::unique_lock lk(m_);
            j = try_pop_locked();
            if (!j) {
                ms->word_.fetch_or(flag_helpers, std::memory_order_acq_rel);
                if (s->is_ready()) return true;
                ++idle_;
                bool timed_out = false;
                if (deadline)
                    timed_out = cv_.wait_until(lk, *deadline) == std::cv_status::timeout;
                else
                    cv_.wait(lk);
                --idle_;
                if (timed_out) return s->is_ready();
                continue;
            }
        }
        run_job(j);  // run queued work while we wait: no deadlock when all workers wait
    }
}

bool PoolCore::help_while_not(bool (*done)(const void*) noexcept, const void* ctx,
                              std::optional<Clock::time_point> deadline) {
    for (;;) {
        if (done(ctx)) return true;
        Job* j = nullptr;
        {
            std::unique_lock lk(m_);
            j = try_pop_locked();
            if (!j) {
                if (done(ctx)) return true;  // under m_: a notify_helpers() after this wakes us
                ++idle_;
                bool timed_out = false;
                if (deadline)
                    timed_out = cv_.wait_until(lk, *deadline) == std::cv_status::timeout;
                else
                    cv_.wait(lk);
                --idle_;
                if (timed_out) return done(ctx);
                continue;
            }
        }
        run_job(j);  // as help_until: run queued work while we wait
    }
}

void PoolCore::notify_helpers() noexcept {
    { std::lock_guard lk(m_); }
    cv_.notify_all();
}

// ---- the callback loop ------------------------------------------------------------------
namespace {
struct LoopHandler {
    PoolCore* pool;
    Function<void()> fn;
    void operator()() {
        try {
            fn();
        } catch (...) {
            pool->report_callback_error(std::current_exception());
        }
        fn = nullptr;
        pool->loop_handler_done();
    }
};
}  // namespace

void PoolCore::loop_handler_done() noexcept {
    counters().callbacks.fetch_sub(1, std::memory_order_relaxed);
    release_unit();
}

void PoolCore::post_callbacks(StateBase* s) noexcept {
    s->add_ref();
    counters().callbacks.fetch_add(1, std::memory_order_relaxed);
    boost::asio::post(loop_->ioc, [this, s] {
        s->run_callbacks();  // makes s ready; its unit is released there
        counters().callbacks.fetch_sub(1, std::memory_order_relaxed);
        s->release();
    });
}

void PoolCore::post_loop(Function<void()> fn) noexcept {
    active_.fetch_add(1, std::memory_order_seq_cst);
    counters().callbacks.fetch_add(1, std::memory_order_relaxed);
    boost::asio::post(loop_->ioc, LoopHandler{this, std::move(fn)});
}

bool PoolCore::try_post_loop(Function<void()>& fn) {
    std::lock_guard lk(m_);
    if (loop_closed_) return false;
    active_.fetch_add(1, std::memory_order_seq_cst);
    counters().callbacks.fetch_add(1, std::memory_order_relaxed);
    boost::asio::post(loop_->ioc, LoopHandler{this, std::move(fn)});
    return true;
}

// ---- Asio executors ----------------------------------------------------------------------
void PoolCore::submit_executor_job(Job* job) {
    bool discard = false;
    bool wake = false;
    {
        std::lock_guard lk(m_);
        if (loop_closed_) throw_not_accepting();  // join() has finished
        active_.fetch_add(1, std::memory_order_seq_cst);
        counters().submitted.fetch_add(1, std::memory_order_relaxed);
        counters().queued.fetch_add(1, std::memory_order_relaxed);
        job->next_ = nullptr;
        if (state_.load(std::memory_order_relaxed) == PoolState::terminate) {
            discard = true;  // as Asio: handlers of a context that shut down never run
        } else {
            if (tail_)
                tail_->next_ = job;
            else
                head_ = job;
            tail_ = job;
            wake = idle_ > 0;
        }
    }
    if (discard)
        job->discard();  // outside the lock: destroying a handler may post again
    else if (wake)
        cv_.notify_one();
}

void PoolCore::submit_loop_job(Job* job) {
    std::lock_guard lk(m_);
    if (loop_closed_) throw_not_accepting();
    active_.fetch_add(1, std::memory_order_seq_cst);
    counters().callbacks.fetch_add(1, std::memory_order_relaxed);
    boost::asio::post(loop_->ioc, [this, job] {
        if (state() == PoolState::terminate)
            job->discard();
        else
            job->run();
        loop_handler_done();
    });
}

boost::asio::execution_context& PoolCore::worker_context() noexcept { return loop_->worker_ctx; }
boost::asio::execution_context& PoolCore::loop_context() noexcept { return loop_->ioc; }

void PoolCore::report_callback_error(std::exception_ptr e) noexcept {
    if (options_.on_callback_error) {
        try {
            options_.on_callback_error(e);
            return;
        } catch (...) {
            std::fputs("pypool: on_callback_error threw an exception; ignored\n", stderr);
            return;
        }
    }
    std::string what = "an exception not derived from std::exception";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        what = ex.what();
    } catch (...) {
    }
    std::fprintf(stderr, "pypool: exception in callback: %s\n", what.c_str());
}

// ---- accounting -----------------------------------------------------------------------------
void PoolCore::release_unit() noexcept {
    if (on_own_thread()) {
        // join() joins this thread before the pool can go away: no lock needed unless last
        if (active_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
            joining_.load(std::memory_order_seq_cst)) {
            { std::lock_guard lk(m_); }
            join_cv_.notify_all();
        }
        return;
    }
    // Another thread: decrement under the lock so join() cannot finish (and the pool
    // vanish) between our decrement and our notify.
    std::lock_guard lk(m_);
    if (active_.fetch_sub(1, std::memory_order_seq_cst) == 1) join_cv_.notify_all();
}

PoolCore::Counters& PoolCore::counters() noexcept {
    if (tls_worker_pool == this) return shards_[tls_worker_index];
    if (tls_loop_pool == this) return shards_[nshards_ - 2];
    return shards_[nshards_ - 1];
}

PoolStats PoolCore::stats() const noexcept {
    std::ptrdiff_t v[7] = {};
    for (std::size_t i = 0; i < nshards_; ++i) {
        const Counters& c = shards_[i];
        v[0] += c.submitted.load(std::memory_order_relaxed);
        v[1] += c.completed.load(std::memory_order_relaxed);
        v[2] += c.failed.load(std::memory_order_relaxed);
        v[3] += c.cancelled.load(std::memory_order_relaxed);
        v[4] += c.queued.load(std::memory_order_relaxed);
        v[5] += c.running.load(std::memory_order_relaxed);
        v[6] += c.callbacks.load(std::memory_order_relaxed);
    }
    // Shards are read one after another: while tasks move, a sum can be briefly off (never
    // negative after clamping); at rest every counter is exact.
    auto u = [](std::ptrdiff_t x) { return x < 0 ? std::size_t{0} : static_cast<std::size_t>(x); };
    return PoolStats{u(v[0]), u(v[1]), u(v[2]), u(v[3]), u(v[4]), u(v[5]), u(v[6])};
}

// ---- lifecycle ----------------------------------------------------------------------------
void PoolCore::close() {
    std::lock_guard lk(m_);
    if (state_.load(std::memory_order_relaxed) == PoolState::run) {
        state_.store(PoolState::close, std::memory_order_release);
        if (first_stop_ == StopKind::none) first_stop_ = StopKind::close;
    }
}

void PoolCore::terminate() {
    Job* queued = nullptr;
    {
        std::lock_guard lk(m_);
        if (state_.load(std::memory_order_relaxed) == PoolState::terminate) return;
        state_.store(PoolState::terminate, std::memory_order_release);
        if (first_stop_ == StopKind::none) first_stop_ = StopKind::terminate;
        queued = detach_queue_locked();
        for (StreamHook* h = streams_; h; h = h->hook_next_) h->on_terminate();
    }
    discard_all(queued);  // each completes as cancelled; error_callbacks go to the loop
    cv_.notify_all();
}

void PoolCore::shutdown(bool wait, bool cancel_futures) {
    Job* queued = nullptr;
    {
        std::lock_guard lk(m_);
        if (state_.load(std::memory_order_relaxed) == PoolState::run) {
            state_.store(PoolState::close, std::memory_order_release);
            if (first_stop_ == StopKind::none) first_stop_ = StopKind::shutdown;
        }
        if (cancel_futures) queued = detach_queue_locked();
    }
    discard_all(queued);
    if (wait) join();
}

void PoolCore::add_stream(StreamHook* h) {
    {
        std::lock_guard lk(m_);
        if (!accepts_locked()) throw_not_accepting();
        h->hook_add_ref();  // the pool's reference while linked
        h->hook_linked_ = true;
        h->drained_for_join_ = false;
        h->hook_prev_ = nullptr;
        h->hook_next_ = streams_;
        if (streams_) streams_->hook_prev_ = h;
        streams_ = h;
    }
    join_cv_.notify_all();  // a join() waiting for work must drain this stream too
}

bool PoolCore::remove_stream(StreamHook* h) noexcept {
    std::lock_guard lk(m_);
    if (!h->hook_linked_) return false;
    h->hook_linked_ = false;
    if (h->hook_prev_)
        h->hook_prev_->hook_next_ = h->hook_next_;
    else
        streams_ = h->hook_next_;
    if (h->hook_next_) h->hook_next_->hook_prev_ = h->hook_prev_;
    h->hook_next_ = h->hook_prev_ = nullptr;
    return true;
}

bool PoolCore::undrained_stream_locked() const noexcept {
    for (StreamHook* s = streams_; s; s = s->hook_next_)
        if (!s->drained_for_join_) return true;
    return false;
}

void PoolCore::join() {
    if (state() == PoolState::run) throw ValueError("Pool is still running");
    if (on_worker())
        throw DeadlockError("join() on a worker of the same pool would wait for itself");
    if (on_loop())
        throw DeadlockError("join() on the pool's callback thread would wait for itself");
    std::lock_guard jl(join_m_);
    if (joined()) return;
    for (;;) {
        drain_streams();
        std::unique_lock lk(m_);
        joining_.store(true, std::memory_order_seq_cst);
        // A stream started from inside the pool meanwhile has unread input to drain too.
        join_cv_.wait(lk, [&] {
            return active_.load(std::memory_order_seq_cst) == 0 || undrained_stream_locked();
        });
        if (undrained_stream_locked()) continue;
        loop_closed_ = true;  // nothing runs, so nothing can post or submit any more
        stop_ = true;
        break;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    loop_->guard.reset();
    loop_->thread.join();
    // Streams still linked (terminated, or stopped by shutdown(cancel_futures)): unlink them
    // so their iterators never touch this pool again.
    StreamHook* left = nullptr;
    {
        std::lock_guard lk(m_);
        left = std::exchange(streams_, nullptr);
        for (StreamHook* h = left; h; h = h->hook_next_) h->hook_linked_ = false;
    }
    while (left) {
        StreamHook* next = left->hook_next_;
        left->hook_next_ = left->hook_prev_ = nullptr;
        left->on_detach();
        left->hook_release();
        left = next;
    }
    joined_.store(true, std::memory_order_release);
}

void PoolCore::drain_streams() {
    // join() accepts the unread input of live imap iterators as work: read it here.
    // Streams are visited one at a time; each drain_for_join() may take long (it runs
    // the rest of the input), and a stream that finished or was destroyed unlinks itself.
    for (;;) {
        StreamHook* h = nullptr;
        {
            std::lock_guard lk(m_);
            for (StreamHook* s = streams_; s; s = s->hook_next_) {
                if (!s->drained_for_join_) {
                    h = s;
                    break;
                }
            }
            if (!h) return;
            h->drained_for_join_ = true;
            h->hook_add_ref();  // the stream may unlink itself (or be abandoned) meanwhile
        }
        try {
            h->drain_for_join();
        } catch (...) {
            // reading errors are kept by the stream for its iterator; nothing else throws
        }
        h->hook_release();
    }
}

}  // namespace pypool::detail
