// The pool's threads, queue, lifecycle and accounting.
#include <utility>  // before Asio (see TOOLCHAIN.md)

#include <boost/asio/post.hpp>

#include <cstdio>
#include <exception>
#include <string>

#include <pypool/detail/intrusive.hpp>
#include <pypool/detail/pool_core.hpp>
#include <pypool/detail/spin.hpp>
#include <pypool/errors.hpp>

#include "loop.hpp"
#include "registry.hpp"

namespace pypool::detail {
namespace {
// What the calling thread is to which pool. initial-exec: a plain %fs-relative access
// instead of a __tls_get_addr call (it was 3% of a task's cost); libpypool is linked, not
// dlopen()ed late, and glibc's static TLS reserve covers these 24 bytes even then.
#if defined(__GNUC__)
#define PYPOOL_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define PYPOOL_TLS_MODEL
#endif
PYPOOL_TLS_MODEL thread_local PoolCore* tls_worker_pool = nullptr;
PYPOOL_TLS_MODEL thread_local PoolCore* tls_loop_pool = nullptr;
PYPOOL_TLS_MODEL thread_local std::size_t tls_worker_index = 0;  // the counters' shard
// The calling pool thread's own queue in locals_ (a worker's index; a spare's while it holds
// a spare queue); out of range: none.
PYPOOL_TLS_MODEL thread_local std::size_t tls_queue_index = static_cast<std::size_t>(-1);
// The jobs running on this pool thread's stack, innermost first (a waiting worker runs the
// awaited task inline): a blocked thread's frames say which tasks its wait holds up.
struct RunFrame {
    const Job* job;
    const RunFrame* prev;
};
PYPOOL_TLS_MODEL thread_local const RunFrame* tls_frame = nullptr;
// When a surplus spare next offers its core (see yield_if_surplus()).
PYPOOL_TLS_MODEL thread_local Clock::time_point tls_next_yield{};

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
std::unordered_map<std::uint64_t, PoolCore*>& registry() {
    static std::unordered_map<std::uint64_t, PoolCore*> r;
    return r;
}

namespace {
std::atomic<std::uint64_t> next_pool_id{1};
}  // namespace

PoolCore::PoolCore(PoolOptions options) : options_(std::move(options)) {
    const int n = resolve_processes(options_);
    loop_ = std::make_unique<Loop>();
    nshards_ = static_cast<std::size_t>(n) + 3;
    shards_ = std::make_unique<Counters[]>(nshards_);
    for (std::size_t i = 0; i < nshards_ - 2; ++i) shards_[i].solo = true;  // see counters()
    nworker_locals_ = static_cast<std::size_t>(n);
    nlocals_ = 2 * nworker_locals_;  // as many spare queues as workers
    locals_ = std::make_unique<LocalQueue[]>(nlocals_);

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
                tls_queue_index = static_cast<std::size_t>(i);
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
    id_ = next_pool_id.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lk(registry_mutex());
    registry().emplace(id_, this);
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
    registry().erase(id_);
}

// ---- thread identity -----------------------------------------------------------------
bool PoolCore::on_worker() const noexcept { return tls_worker_pool == this; }
bool PoolCore::on_loop() const noexcept { return tls_loop_pool == this; }
inline PoolCore::LocalQueue* PoolCore::own_queue() noexcept {
    return tls_worker_pool == this && tls_queue_index < nlocals_ ? &locals_[tls_queue_index]
                                                                 : nullptr;
}

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

void PoolCore::acquire_unit() { take_units_or_throw(1); }

void PoolCore::take_units_or_throw(std::size_t count, Admit admit) {
    // A worker that released units lazily (release_unit()) reuses them: active_ still
    // counts them, so join() keeps waiting as if they were taken now, and the task that
    // submits from a task (fork-join, follow-ups) touches no shared counter.
    if (LocalQueue* q = own_queue();
        q && q->unreleased >= count && state_.load(std::memory_order_seq_cst) == PoolState::run) {
        q->unreleased -= count;
        return;
    }
    // Take the units first, then look at the state (both seq_cst): close() stores the state
    // before join() reads active_, so either join() sees our units and waits for them, or
    // we see that the pool stopped running and decide under m_.
    active_.fetch_add(count, std::memory_order_seq_cst);
    if (state_.load(std::memory_order_seq_cst) == PoolState::run) return;
    std::lock_guard lk(m_);
    bool accepted = false;
    switch (admit) {
        case Admit::task:
            accepted = accepts_locked();
            break;
        case Admit::stream:
            accepted = state_.load(std::memory_order_relaxed) != PoolState::terminate && !loop_closed_;
            break;
        case Admit::handler:  // Asio's rule: until join() has finished (terminate discards)
            accepted = !loop_closed_;
            break;
    }
    if (accepted) return;
    if (active_.fetch_sub(count, std::memory_order_seq_cst) == count) join_cv_.notify_all();
    throw_not_accepting();
}

void PoolCore::submit(Job* job) {
    job->next_ = nullptr;
    submit_batch(job, job, 1);
}

void PoolCore::count_submitted(std::ptrdiff_t n) noexcept {
    add_count(&Counters::submitted, n);
}

void PoolCore::enqueue(Job* first, Job* last, std::size_t count) noexcept {
    count_submitted(static_cast<std::ptrdiff_t>(count));
    enqueue_counted(first, last, count);
}

void PoolCore::enqueue_counted(Job* first, Job* last, std::size_t count) noexcept {
    if (own_queue()) first = push_local(tls_queue_index, first);  // a spare may have none
    if (first) push(first, last);
    wake_for_jobs(count);
}

void PoolCore::acquire_task_unit() {
    take_units_or_throw(1);
    count_submitted(1);
}

void PoolCore::cancel_task_unit() noexcept {
    count_submitted(-1);
    release_unit();
}

void PoolCore::enqueue_acquired(Job* job) noexcept {
    job->next_ = nullptr;
    enqueue_counted(job, job, 1);
}

void PoolCore::submit_batch(Job* first, Job* last, std::size_t count) {
    take_units_or_throw(count);
    enqueue(first, last, count);
}

void PoolCore::submit_stream(Job* first, Job* last, std::size_t count) {
    take_units_or_throw(count, Admit::stream);
    enqueue(first, last, count);
}

// ---- the queue ----------------------------------------------------------------------------
// Vyukov's intrusive MPSC queue: a producer swaps itself in as the tail, then links the old
// tail to its first node; consumers take turns under pop_lock_. Between a producer's exchange
// and its link the queue looks shorter than it is (pop() may miss the new nodes): waiters
// treat that state as "not empty" (queue_empty() is false) and retry instead of parking,
// and the producer wakes parked threads only after linking.
namespace {
std::atomic_ref<Job*> link_of(Job* j) noexcept { return std::atomic_ref<Job*>(j->next_); }
}  // namespace

void PoolCore::push(Job* first, Job* last) noexcept {
    link_of(last).store(nullptr, std::memory_order_relaxed);  // pop() may read the stub's
    Job* prev = qtail_.exchange(last, std::memory_order_seq_cst);
    link_of(prev).store(first, std::memory_order_release);
}

Job* PoolCore::pop() noexcept {
    // Empty (or a producer has not linked yet): no lock. Reads no qtail_: that line is the
    // producers', and a read per job would take it from them for every next push.
    Job* head = qhead_.load(std::memory_order_relaxed);
    if (head == &stub_ && link_of(&stub_).load(std::memory_order_acquire) == nullptr)
        return nullptr;
    // The head's line comes from the producer's core: fetch it while taking the lock, not
    // under it (a miss under the lock made the other worker spin through it).
    __builtin_prefetch(head, 1);
    std::lock_guard lk(pop_lock_);
    return pop_locked();
}

Job* PoolCore::pop_locked() noexcept {
    Job* head = qhead_.load(std::memory_order_relaxed);
    Job* next = link_of(head).load(std::memory_order_acquire);
    if (head == &stub_) {
        if (!next) return nullptr;  // empty (or a producer has not linked yet)
        qhead_.store(next, std::memory_order_relaxed);
        head = next;
        next = link_of(next).load(std::memory_order_acquire);
    }
    if (!next) {
        // head is the last node: put the stub behind it so that head can leave.
        if (qtail_.load(std::memory_order_acquire) != head) return nullptr;  // a producer links
        push(&stub_, &stub_);
        next = link_of(head).load(std::memory_order_acquire);
        if (!next) return nullptr;  // a producer swapped in after head and links soon
    }
    qhead_.store(next, std::memory_order_relaxed);
    head->next_ = nullptr;
    return head;
}

bool PoolCore::queue_empty() noexcept {
    for (std::size_t i = 0; i < nlocals_; ++i)
        if (locals_[i].size.load(std::memory_order_seq_cst) != 0) return false;
    std::lock_guard lk(pop_lock_);
    return qhead_.load(std::memory_order_relaxed) == &stub_ &&
           link_of(&stub_).load(std::memory_order_acquire) == nullptr &&
           qtail_.load(std::memory_order_seq_cst) == &stub_;
}

bool PoolCore::maybe_jobs() const noexcept {
    if (qtail_.load(std::memory_order_acquire) != &stub_ ||
        qhead_.load(std::memory_order_relaxed) != &stub_)
        return true;
    for (std::size_t i = 0; i < nlocals_; ++i)
        if (locals_[i].size.load(std::memory_order_relaxed) != 0) return true;
    return false;
}

// ---- the workers' own queues ----------------------------------------------------------------
Job* PoolCore::LocalQueue::pop_back() noexcept {
    if (size.load(std::memory_order_relaxed) == 0) return nullptr;
    lock();
    Job* j = nullptr;
    if (back != front) {
        j = ring[--back % capacity];
        size.store(back - front, std::memory_order_relaxed);
    }
    unlock();
    return j;
}

Job* PoolCore::LocalQueue::pop_front() noexcept {
    if (size.load(std::memory_order_relaxed) == 0) return nullptr;
    lock();
    Job* j = nullptr;
    if (back != front) {
        j = ring[front++ % capacity];
        size.store(back - front, std::memory_order_relaxed);
    }
    unlock();
    return j;
}

bool PoolCore::LocalQueue::take(Job* j) noexcept {
    if (size.load(std::memory_order_relaxed) == 0) return false;
    lock();
    bool found = false;
    const std::size_t stop = back - front > 8 ? back - 8 : front;
    for (std::size_t p = back; p != stop; --p) {
        if (ring[(p - 1) % capacity] == j) {
            for (std::size_t k = p; k != back; ++k)
                ring[(k - 1) % capacity] = ring[k % capacity];
            --back;
            size.store(back - front, std::memory_order_relaxed);
            found = true;
            break;
        }
    }
    unlock();
    return found;
}

Job* PoolCore::push_local(std::size_t self, Job* first) noexcept {
    LocalQueue& q = locals_[self];
    q.lock();
    while (first && q.back - q.front < LocalQueue::capacity) {
        Job* next = first->next_;
        first->next_ = nullptr;
        q.ring[q.back++ % LocalQueue::capacity] = first;
        first = next;
    }
    // seq_cst: pairs with a parking thread's queue_empty() (see wake_for_jobs)
    q.size.store(q.back - q.front, std::memory_order_seq_cst);
    q.unlock();
    return first;
}

Job* PoolCore::next_job(std::size_t self) noexcept {
    LocalQueue& own = locals_[self];
    Job* j = nullptr;
    if ((++own.tick & 31U) != 0) {
        if ((j = own.pop_back()) || (j = pop())) return j;
    } else {
        if ((j = pop()) || (j = own.pop_back())) return j;
    }
    for (std::size_t i = 1; i < nlocals_; ++i) {
        if ((j = locals_[(self + i) % nlocals_].pop_front())) return j;
    }
    return nullptr;
}

namespace {
// Jobs linked through next_, in the order appended.
struct JobList {
    Job* first = nullptr;
    Job* last = nullptr;
    std::size_t count = 0;
    void append(Job* j) noexcept {
        j->next_ = nullptr;
        if (last)
            last->next_ = j;
        else
            first = j;
        last = j;
        ++count;
    }
};
}  // namespace

Job* PoolCore::detach_queue() noexcept {
    // Pops everything linked now; nodes a racing producer links later are found by a
    // worker, which discards them once the pool terminated (see worker_main).
    JobList jobs;
    {
        std::lock_guard lk(pop_lock_);
        while (Job* j = pop_locked()) jobs.append(j);
    }
    for (std::size_t i = 0; i < nlocals_; ++i) {
        while (Job* j = locals_[i].pop_front()) jobs.append(j);
    }
    return jobs.first;
}

void PoolCore::wake_for_jobs(std::size_t count) noexcept {
    // seq_cst loads after push()'s seq_cst exchange pair with the parking thread's
    // increment and queue_empty() (Dekker): one of the two sees the other.
    // Only idle threads (workers, licensed spares) park on cv_: a waiting thread never takes
    // a job, so no wake-up meant for a job can end in a wait.
    if (idle_.load(std::memory_order_seq_cst) == 0) return;
    { std::lock_guard lk(m_); }  // the parked thread checked under m_: it waits by now
    if (count == 1)
        cv_.notify_one();
    else
        cv_.notify_all();
}

void PoolCore::discard_all(Job* j) noexcept {
    while (j) {
        Job* next = j->next_;
        j->next_ = nullptr;
        j->discard();
        j = next;
    }
}

void PoolCore::yield_if_surplus() noexcept {
    // A spare runs in place of a blocked thread. Once that thread resumes, the spare is
    // surplus but finishes the job it is in (which may be a whole subtree of fork-join
    // work): size() + 1 runnable threads. On a machine with no core to spare, the resumed
    // thread would sit in the run queue for a scheduler slice (milliseconds) behind the
    // spare, on the critical path. So a surplus spare offers its core before the jobs it
    // starts, at most once every 20 us (a yield costs a system call).
    if (spare_working_.load(std::memory_order_relaxed) <=
        blocked_.load(std::memory_order_relaxed))
        return;
    const auto now = Clock::now();
    if (now < tls_next_yield) return;
    std::this_thread::yield();
    tls_next_yield = now + std::chrono::microseconds(20);
}

void PoolCore::run_job(Job* j) noexcept {
    if (state_.load(std::memory_order_acquire) == PoolState::terminate) {
        j->discard();  // linked after terminate() emptied the queue: it never runs
        return;
    }
    if (tls_worker_index == nshards_ - 1) yield_if_surplus();  // a spare (of this pool)
    const RunFrame frame{j, tls_frame};
    tls_frame = &frame;
    j->run();
    tls_frame = frame.prev;
}

// An idle worker first spins a few microseconds (a futex wake-up costs 10-20 us here),
// yielding the core to runnable threads, then parks on cv_. Producers notify only when a
// thread is parked, so a busy pool makes no system call per task.
void PoolCore::worker_main(std::size_t /*index*/) {
    for (;;) {
        if (Job* j = next_job(tls_worker_index)) {
            run_job(j);
            continue;
        }
        flush_units(locals_[tls_worker_index]);  // nothing to run: join() may be waiting
        if (maybe_jobs()) {  // a producer is between its exchange and its link
            std::this_thread::yield();
            continue;
        }
        if (spin_until([this] { return maybe_jobs(); })) continue;
        std::unique_lock lk(m_);
        if (stop_) return;  // join(): nothing is accepted or queued any more
        idle_.fetch_add(1, std::memory_order_seq_cst);
        if (queue_empty()) cv_.wait(lk);
        idle_.fetch_sub(1, std::memory_order_relaxed);
    }
}
// ---- waiting on a pool thread: run the awaited task if queued, else block compensated ----
void PoolCore::run_awaited(StateBase* s) noexcept {
    // Run the awaited task itself if it is still queued: fork-join recursion then nests
    // only as deep as the program does. If it is among the newest jobs of this worker's own
    // queue (the usual fork-join case), take it out and run it as a worker would; else claim
    // it where it is (its node stays queued and is dropped when reached). Nothing else runs
    // on this stack: an unrelated task could block this wait forever.
    if (LocalQueue* q = own_queue(); q && q->take(s)) {
        run_job(s);  // consumes the queue's reference; the waiter holds its own
    } else {
        const RunFrame frame{s, tls_frame};
        tls_frame = &frame;
        s->run_inline();
        tls_frame = frame.prev;
    }
}

// ---- wait-for cycles through the callback thread --------------------------------------------
bool PoolCore::loop_cycle_locked() const noexcept {
    const StateBase* t = loop_wait_.load(std::memory_order_seq_cst);
    const StateBase* cur = t;
    // Each step follows one blocked thread; a chain longer than the records repeats itself.
    for (std::size_t steps = 0; cur && steps <= nwaits_; ++steps) {
        const std::uint32_t phase = cur->word_.load(std::memory_order_seq_cst) & phase_mask;
        if (phase == phase_ready) return false;
        if (phase == phase_completing && cur != t) return true;  // its callback needs the loop
        const WaitRecord* holder = nullptr;
        for (const WaitRecord* r = waits_; r && !holder; r = r->next) {
            for (auto* f = static_cast<const RunFrame*>(r->frames); f; f = f->prev) {
                if (f->job == static_cast<const Job*>(cur)) {
                    holder = r;
                    break;
                }
            }
        }
        if (!holder) return false;  // cur is queued, or runs on a thread that is not blocked
        cur = holder->awaited;
    }
    return false;
}

void PoolCore::check_loop_cycle_locked() noexcept {
    const StateBase* t = loop_wait_.load(std::memory_order_relaxed);
    if (!t || loop_deadlock_.load(std::memory_order_relaxed) || !loop_cycle_locked()) return;
    loop_deadlock_.store(true, std::memory_order_release);
    StateBase::wake_stripe(t);  // t is alive: the loop holds it until loop_wait_end()
}

void PoolCore::enter_wait(WaitRecord& r, const StateBase* s) noexcept {
    std::lock_guard lk(graph_m_);
    r.awaited = s;
    r.frames = tls_frame;
    r.prev = nullptr;
    r.next = waits_;
    if (waits_) waits_->prev = &r;
    waits_ = &r;
    ++nwaits_;
    check_loop_cycle_locked();
}

void PoolCore::leave_wait(WaitRecord& r) noexcept {
    std::lock_guard lk(graph_m_);
    if (r.prev)
        r.prev->next = r.next;
    else
        waits_ = r.next;
    if (r.next) r.next->prev = r.prev;
    --nwaits_;
}

void PoolCore::loop_wait_begin(const StateBase* t) noexcept {
    std::lock_guard lk(graph_m_);
    loop_deadlock_.store(false, std::memory_order_relaxed);
    loop_wait_.store(t, std::memory_order_seq_cst);
    if (loop_cycle_locked()) loop_deadlock_.store(true, std::memory_order_release);
}

void PoolCore::loop_wait_end() noexcept {
    std::lock_guard lk(graph_m_);
    loop_wait_.store(nullptr, std::memory_order_relaxed);
    loop_deadlock_.store(false, std::memory_order_relaxed);
}

// The most spare threads a pool starts; threads blocked beyond that many are not
// compensated. Spares are kept (parked) until join(). A timed wait never runs the awaited
// task itself, so fork-join written with timed waits blocks one thread per started inner
// node (1,023 tasks of depth 10: up to 511): the bound is well above such trees, far below
// what the system allows (a parked thread costs its stack's address space, little memory).
constexpr std::size_t max_spares = 1024;

bool PoolCore::start_spare_locked() noexcept {
    try {
        spares_.reserve(spares_.size() + 1);
        spares_.emplace_back([this, k = spares_.size()] {
            set_thread_name(options_.thread_name_prefix, "-s" + std::to_string(k));
            tls_worker_pool = this;
            tls_worker_index = nshards_ - 1;  // the spares' shard; a queue while it works
            spare_main();
        });
    } catch (...) {
        return false;  // no thread (resources exhausted): this wait stays uncompensated
    }
    ++spare_starting_;
    return true;
}

void PoolCore::begin_blocking() noexcept {
    if (LocalQueue* q = own_queue()) flush_units(*q);  // a long wait must not hold up join()
    std::lock_guard lk(m_);
    const std::ptrdiff_t blocked = blocked_.fetch_add(1, std::memory_order_seq_cst) + 1;
    // Licenses not covered yet by a running spare or one on its way.
    const std::ptrdiff_t uncovered = blocked - spare_working_.load(std::memory_order_relaxed) -
                                     spare_tokens_ - spare_starting_;
    if (uncovered <= 0 || stop_) return;
    if (spare_idle_ > 0) {
        --spare_idle_;
        ++spare_tokens_;
        spare_cv_.notify_one();
    } else if (spares_.size() < max_spares) {
        (void)start_spare_locked();
    }
}

void PoolCore::spare_main() noexcept {
    std::unique_lock lk(m_);
    --spare_starting_;
    for (;;) {
        if (stop_) return;
        if (spare_working_.load(std::memory_order_relaxed) <
            blocked_.load(std::memory_order_seq_cst)) {
            spare_working_.fetch_add(1, std::memory_order_relaxed);
            lk.unlock();
            spare_work();  // gives the license back and returns with m_ held
            lk = std::unique_lock<std::mutex>(m_, std::adopt_lock);
            continue;
        }
        ++spare_idle_;
        spare_cv_.wait(lk, [this] { return stop_ || spare_tokens_ > 0; });
        if (spare_tokens_ > 0)
            --spare_tokens_;
        else
            --spare_idle_;  // stop_: nobody claimed this spare
    }
}

Job* PoolCore::next_job_spare() noexcept {
    LocalQueue* own = own_queue();
    if (Job* j = own ? own->pop_back() : nullptr) return j;
    if (Job* j = pop()) return j;
    for (std::size_t i = 0; i < nlocals_; ++i)
        if (&locals_[i] != own)
            if (Job* j = locals_[i].pop_front()) return j;
    return nullptr;
}

void PoolCore::claim_spare_queue() noexcept {
    for (std::size_t i = nworker_locals_; i < nlocals_; ++i) {
        if (!locals_[i].claimed.load(std::memory_order_relaxed) &&
            !locals_[i].claimed.exchange(true, std::memory_order_acquire)) {
            tls_queue_index = i;
            return;
        }
    }
}

void PoolCore::release_spare_queue() noexcept {
    LocalQueue* q = own_queue();
    if (!q) return;
    // Jobs its tasks queued and nobody ran yet go to the shared queue (oldest first), where
    // any thread finds them; then nothing of this spare is left in the queue.
    JobList left;
    while (Job* j = q->pop_front()) left.append(j);
    flush_units(*q);
    tls_queue_index = static_cast<std::size_t>(-1);
    q->claimed.store(false, std::memory_order_release);
    if (left.first) {
        push(left.first, left.last);
        wake_for_jobs(left.count);
    }
}

void PoolCore::spare_work() noexcept {
    // Returns with m_ held, its license given back and its queue (if it had one) released.
    auto surplus = [this] {
        return spare_working_.load(std::memory_order_relaxed) >
               blocked_.load(std::memory_order_seq_cst);
    };
    for (;;) {
        if (!own_queue()) claim_spare_queue();
        if (Job* j = next_job_spare()) {
            run_job(j);
            if (!surplus()) continue;
        } else if (maybe_jobs()) {  // a producer is between its exchange and its link
            std::this_thread::yield();
            continue;
        } else if (spin_until([&] { return maybe_jobs() || surplus(); }) && !surplus()) {
            continue;
        }
        // It retires or parks: its queue goes first (not under m_: that may wake threads)
        release_spare_queue();
        std::unique_lock lk(m_);
        if (surplus() || stop_) {
            spare_working_.fetch_sub(1, std::memory_order_relaxed);
            lk.release();  // the caller (spare_main) goes on holding m_
            return;
        }
        if (!maybe_jobs()) {
            // Licensed but nothing to do: park as an idle worker (the same handshake).
            idle_.fetch_add(1, std::memory_order_seq_cst);
            if (queue_empty()) cv_.wait(lk);
            idle_.fetch_sub(1, std::memory_order_relaxed);
        }
    }
}

bool PoolCore::help_while_not(bool (*done)(const void*) noexcept, const void* ctx,
                              std::optional<Clock::time_point> deadline) {
    if (done(ctx)) return true;
    if (spin_until([&] { return done(ctx); })) return true;
    Blocking blocking;
    // Whoever makes done() true calls notify_helpers(), which takes m_.
    std::unique_lock lk(m_);
    if (!deadline) {
        helper_cv_.wait(lk, [&] { return done(ctx); });
        return true;
    }
    return helper_cv_.wait_until(lk, *deadline, [&] { return done(ctx); });
}

void PoolCore::notify_helpers() noexcept {
    { std::lock_guard lk(m_); }
    helper_cv_.notify_all();
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
    add_count(&Counters::callbacks, -1);
    release_unit();
}

void PoolCore::post_callbacks(StateBase* s) noexcept {
    // s is completing now. If a thread blocks on it while the callback thread waits, this
    // may close a wait-for cycle through the loop (the fence pairs with loop_wait_begin's
    // seq_cst store and read: one of the two sees the other).
    if (s->word() & flag_waiters) {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (loop_wait_.load(std::memory_order_seq_cst)) {
            std::lock_guard lk(graph_m_);
            check_loop_cycle_locked();
        }
    }
    s->add_ref();
    add_count(&Counters::callbacks, 1);
    // Push s on the completion stack; only the push onto an empty stack (no handler
    // draining it) posts a handler, so a burst of completions costs one Asio post.
    StateBase* old = completions_.load(std::memory_order_relaxed);
    do {
        s->loop_next_ = old == loop_busy() ? nullptr : old;
    } while (!completions_.compare_exchange_weak(old, s, std::memory_order_release,
                                                 std::memory_order_relaxed));
    if (old == nullptr) boost::asio::post(loop_->ioc, [this] { drain_completions(); });
}

void PoolCore::drain_completions() noexcept {
    Counters& c = counters();
    for (;;) {
        StateBase* list = completions_.exchange(loop_busy(), std::memory_order_acquire);
        if (list == loop_busy()) {
            // Nothing new: wait briefly for more (a burst usually goes on), then stop
            // draining; a completion pushed after that posts a new handler.
            if (spin_until([this] { return completions_.load(std::memory_order_relaxed) !=
                                           loop_busy(); },
                           64, 4))
                continue;
            StateBase* expected = loop_busy();
            if (completions_.compare_exchange_strong(expected, nullptr,
                                                     std::memory_order_acq_rel))
                return;
            continue;
        }
        // the stack holds the newest first: run them oldest first
        StateBase* fifo = reverse_list(list, &StateBase::loop_next_);
        while (fifo) {
            StateBase* s = fifo;
            fifo = fifo->loop_next_;
            s->loop_next_ = nullptr;
            s->run_callbacks();  // makes s ready; its unit is released there
            c.add(c.callbacks, -1);
            s->release();
        }
    }
}

void PoolCore::post_loop(Function<void()> fn) noexcept {
    active_.fetch_add(1, std::memory_order_seq_cst);
    add_count(&Counters::callbacks, 1);
    boost::asio::post(loop_->ioc, LoopHandler{this, std::move(fn)});
}

bool PoolCore::try_post_loop(Function<void()>& fn) {
    std::lock_guard lk(m_);
    if (loop_closed_) return false;
    active_.fetch_add(1, std::memory_order_seq_cst);
    add_count(&Counters::callbacks, 1);
    boost::asio::post(loop_->ioc, LoopHandler{this, std::move(fn)});
    return true;
}

// ---- Asio executors ----------------------------------------------------------------------
void PoolCore::submit_executor_job(Job* job) {
    take_units_or_throw(1, Admit::handler);
    job->next_ = nullptr;
    if (state_.load(std::memory_order_acquire) == PoolState::terminate) {
        count_submitted(1);
        job->discard();  // as Asio: handlers of a context that shut down never run
        return;
    }
    enqueue(job, job, 1);  // a worker discards it if terminate() comes first
}

void PoolCore::submit_loop_job(Job* job) {
    std::lock_guard lk(m_);
    if (loop_closed_) throw_not_accepting();
    active_.fetch_add(1, std::memory_order_seq_cst);
    add_count(&Counters::callbacks, 1);
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
namespace {
constexpr std::size_t deferred_units = 64;  // a worker's releases gathered per active_ update
}  // namespace

void PoolCore::flush_units(LocalQueue& q) noexcept {
    const std::size_t n = std::exchange(q.unreleased, 0);
    if (n == 0) return;
    // join() joins this thread before the pool can go away: no lock needed unless last
    if (active_.fetch_sub(n, std::memory_order_seq_cst) == n &&
        joining_.load(std::memory_order_seq_cst)) {
        { std::lock_guard lk(m_); }
        join_cv_.notify_all();
    }
}

void PoolCore::release_unit() noexcept {
    if (LocalQueue* q = own_queue()) {
        // A worker (not a spare): it flushes before it looks for work in vain, parks or
        // blocks, so join() (which waits for active_ == 0) is held up only while this
        // worker still finds jobs to run.
        if (++q->unreleased >= deferred_units) flush_units(*q);
        return;
    }
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
    if (tls_loop_pool == this) return shards_[nshards_ - 3];
    return shards_[nshards_ - 2];
}

PoolStats PoolCore::stats() const noexcept {
    std::ptrdiff_t v[7] = {}, started = 0, ran = 0;
    for (std::size_t i = 0; i < nshards_; ++i) {
        const Counters& c = shards_[i];
        v[0] += c.submitted.load(std::memory_order_relaxed);
        v[1] += c.completed.load(std::memory_order_relaxed);
        v[2] += c.failed.load(std::memory_order_relaxed);
        v[3] += c.cancelled.load(std::memory_order_relaxed);
        started += c.started.load(std::memory_order_relaxed);
        ran += c.ran.load(std::memory_order_relaxed);
        v[6] += c.callbacks.load(std::memory_order_relaxed);
    }
    v[4] = v[0] - started - v[3];  // queued
    v[5] = started - ran;          // running
    // Shards are read one after another: while tasks move, a sum can be briefly off (never
    // negative after clamping); at rest every counter is exact.
    auto u = [](std::ptrdiff_t x) { return x < 0 ? std::size_t{0} : static_cast<std::size_t>(x); };
    return PoolStats{u(v[0]), u(v[1]), u(v[2]), u(v[3]), u(v[4]), u(v[5]), u(v[6])};
}

// ---- lifecycle ----------------------------------------------------------------------------
void PoolCore::close() {
    std::lock_guard lk(m_);
    if (state_.load(std::memory_order_relaxed) == PoolState::run) {
        state_.store(PoolState::close, std::memory_order_seq_cst);  // see take_units_or_throw
        if (first_stop_ == StopKind::none) first_stop_ = StopKind::close;
    }
}

void PoolCore::terminate() {
    Job* queued = nullptr;
    {
        std::lock_guard lk(m_);
        if (state_.load(std::memory_order_relaxed) == PoolState::terminate) return;
        state_.store(PoolState::terminate, std::memory_order_seq_cst);
        if (first_stop_ == StopKind::none) first_stop_ = StopKind::terminate;
        queued = detach_queue();
        for (StreamHook* h = streams_; h; h = h->hook_next_) h->on_terminate();
    }
    discard_all(queued);  // each completes as cancelled; error_callbacks go to the loop
    cv_.notify_all();
    helper_cv_.notify_all();
}

void PoolCore::shutdown(bool wait, bool cancel_futures) {
    Job* queued = nullptr;
    {
        std::lock_guard lk(m_);
        if (state_.load(std::memory_order_relaxed) == PoolState::run) {
            state_.store(PoolState::close, std::memory_order_seq_cst);
            if (first_stop_ == StopKind::none) first_stop_ = StopKind::shutdown;
        }
        if (cancel_futures) queued = detach_queue();
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
    spare_cv_.notify_all();
    for (auto& t : workers_) t.join();
    for (auto& t : spares_) t.join();  // stop_ is set: nothing can start one any more
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
