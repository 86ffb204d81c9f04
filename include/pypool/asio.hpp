#pragma once
/// @file
/// Boost.Asio integration (not included by <pypool/pypool.hpp>): worker_executor(pool) and
/// loop_executor(pool), Asio executors running handlers on a pool's workers or on its
/// callback thread, and async_apply(pool, f, args, token), an Asio initiating function.
///
/// Posting to either executor is accepted until join() has finished, whatever stopped the
/// pool: after close() or shutdown() the handlers run; after terminate() handlers not yet
/// run are destroyed unrun. Once join() has finished, posting throws the first stop's error
/// (ValueError("Pool not running") or RuntimeError("cannot schedule new futures after
/// shutdown")).

#include <utility>  // before Asio: Boost 1.74's headers miss it in C++20 mode

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/allocator.hpp>
#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution/execute.hpp>
#include <boost/asio/execution/executor.hpp>
#include <boost/asio/execution/mapping.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/execution/relationship.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <tuple>
#include <type_traits>
#include <typeinfo>

#include <pypool/detail/pool_core.hpp>
#include <pypool/detail/state.hpp>
#include <pypool/detail/task.hpp>
#include <pypool/errors.hpp>
#include <pypool/function.hpp>
#include <pypool/pool.hpp>

namespace pypool {
namespace detail {

namespace asio_ex = boost::asio::execution;

// Executor property bits (runtime, so that require() keeps the executor's type).
inline constexpr unsigned ex_blocking_never = 1;
inline constexpr unsigned ex_continuation = 2;
inline constexpr unsigned ex_tracked = 4;

/// Tells the pool's on_callback_error (on the callback thread) that a handler threw. The
/// caller is on the loop, or holds a unit of work of the pool.
inline void report_handler_error(PoolCore* core, std::exception_ptr e) noexcept {
    if (core->on_loop()) {
        core->report_callback_error(std::move(e));
        return;
    }
    core->post_loop(Function<void()>([core, err = std::move(e)] { core->report_callback_error(err); }));
}

/// True for std::allocator (the default associated allocator of handlers).
template <class Alloc>
inline constexpr bool is_std_allocator = false;
template <class T>
inline constexpr bool is_std_allocator<std::allocator<T>> = true;

/// Memory of a job allocated with an allocator (the handler's associated allocator). With
/// std::allocator the memory is recycled per thread as result states are
/// (detail/state_alloc.hpp): a job per handler then costs no malloc, as in Asio's own
/// recycling of handler memory.
template <class Self, class Alloc>
struct AllocatedJob {
    using JobAlloc = typename std::allocator_traits<Alloc>::template rebind_alloc<Self>;
    using Traits = std::allocator_traits<JobAlloc>;

    template <class... A>
    static Self* make(const Alloc& a, A&&... args) {
        JobAlloc ja(a);
        Self* p = allocate(ja);
        try {
            ::new (static_cast<void*>(p)) Self(ja, std::forward<A>(args)...);
        } catch (...) {
            deallocate(ja, p);
            throw;
        }
        return p;
    }
    /// Destroys the job (and whatever it owns) and frees its memory.
    static void free(Self* p) noexcept {
        JobAlloc ja(p->alloc_);
        p->~Self();
        deallocate(ja, p);
    }

private:
    static constexpr bool recycled =
        is_std_allocator<Alloc> && alignof(Self) <= alignof(std::max_align_t);
    static Self* allocate(JobAlloc& ja) {
        if constexpr (recycled)
            return static_cast<Self*>(state_alloc(sizeof(Self)));
        else
            return Traits::allocate(ja, 1);
    }
    static void deallocate(JobAlloc& ja, Self* p) noexcept {
        if constexpr (recycled)
            state_free(p, sizeof(Self));
        else
            Traits::deallocate(ja, p, 1);
    }
};

/// A handler posted to worker_executor: one task of the pool.
template <class Fn, class Alloc>
class WorkerHandlerJob final : public Job {
    using Mem = AllocatedJob<WorkerHandlerJob, Alloc>;
    friend Mem;

public:
    template <class F>
    WorkerHandlerJob(const typename Mem::JobAlloc& a, PoolCore* core, F&& f)
        : alloc_(a), core_(core), fn_(std::forward<F>(f)) {}
    static WorkerHandlerJob* make(const Alloc& a, PoolCore* core, Fn&& f) {
        return Mem::make(a, core, std::move(f));
    }
    static WorkerHandlerJob* make(const Alloc& a, PoolCore* core, const Fn& f) {
        return Mem::make(a, core, f);
    }
    void free() noexcept { Mem::free(this); }

    void run() noexcept override {
        PoolCore* core = core_;
        core->note_started();
        std::exception_ptr err;
        try {
            fn_();
        } catch (...) {
            err = std::current_exception();
        }
        free();  // the handler is destroyed as part of its task
        core->note_ran();
        core->note_outcome(!err);
        if (err) report_handler_error(core, std::move(err));
        core->release_unit();
    }
    void discard() noexcept override {  // terminate(): destroyed unrun
        PoolCore* core = core_;
        free();
        core->note_cancelled();
        core->release_unit();
    }

private:
    typename Mem::JobAlloc alloc_;
    PoolCore* core_;
    Fn fn_;
};

/// A handler posted to loop_executor (the core does the accounting).
template <class Fn, class Alloc>
class LoopHandlerJob final : public Job {
    using Mem = AllocatedJob<LoopHandlerJob, Alloc>;
    friend Mem;

public:
    template <class F>
    LoopHandlerJob(const typename Mem::JobAlloc& a, PoolCore* core, F&& f)
        : alloc_(a), core_(core), fn_(std::forward<F>(f)) {}
    static LoopHandlerJob* make(const Alloc& a, PoolCore* core, Fn&& f) {
        return Mem::make(a, core, std::move(f));
    }
    static LoopHandlerJob* make(const Alloc& a, PoolCore* core, const Fn& f) {
        return Mem::make(a, core, f);
    }
    void free() noexcept { Mem::free(this); }

    void run() noexcept override {
        PoolCore* core = core_;
        try {
            fn_();
        } catch (...) {
            core->report_callback_error(std::current_exception());
        }
        free();
    }
    void discard() noexcept override { free(); }

private:
    typename Mem::JobAlloc alloc_;
    PoolCore* core_;
    Fn fn_;
};

/// The Asio executor behind worker_executor (OnLoop = false) and loop_executor (true):
/// a standard executor (Boost.Asio's execution::executor) with the properties blocking
/// (never/possibly), relationship (fork/continuation), outstanding_work (tracked work
/// keeps join() waiting, as it keeps io_context::run() running), allocator, context and
/// mapping (thread).
template <bool OnLoop, class Alloc>
class PoolExecutor {
public:
    /// An executor of core's workers (or callback thread).
    PoolExecutor(PoolCore* core, const Alloc& a, unsigned bits) noexcept
        : core_(core), alloc_(a), bits_(bits) {
        if ((bits_ & ex_tracked) != 0 && core_) core_->add_work();
    }
    PoolExecutor(const PoolExecutor& o) noexcept : PoolExecutor(o.core_, o.alloc_, o.bits_) {}
    PoolExecutor(PoolExecutor&& o) noexcept : core_(o.core_), alloc_(o.alloc_), bits_(o.bits_) {
        if ((bits_ & ex_tracked) != 0) o.core_ = nullptr;
    }
    PoolExecutor& operator=(const PoolExecutor& o) noexcept {
        if (this != &o) {
            PoolExecutor tmp(o);
            swap(tmp);
        }
        return *this;
    }
    PoolExecutor& operator=(PoolExecutor&& o) noexcept {
        if (this != &o) {
            PoolExecutor tmp(std::move(o));
            swap(tmp);
        }
        return *this;
    }
    ~PoolExecutor() {
        if ((bits_ & ex_tracked) != 0 && core_) core_->release_unit();
    }

    // ---- require ----
    PoolExecutor require(asio_ex::blocking_t::never_t) const noexcept { return with(bits_ | ex_blocking_never); }
    PoolExecutor require(asio_ex::blocking_t::possibly_t) const noexcept { return with(bits_ & ~ex_blocking_never); }
    PoolExecutor require(asio_ex::relationship_t::fork_t) const noexcept { return with(bits_ & ~ex_continuation); }
    PoolExecutor require(asio_ex::relationship_t::continuation_t) const noexcept { return with(bits_ | ex_continuation); }
    PoolExecutor require(asio_ex::outstanding_work_t::tracked_t) const noexcept { return with(bits_ | ex_tracked); }
    PoolExecutor require(asio_ex::outstanding_work_t::untracked_t) const noexcept { return with(bits_ & ~ex_tracked); }
    template <class OtherAlloc>
    PoolExecutor<OnLoop, OtherAlloc> require(asio_ex::allocator_t<OtherAlloc> a) const noexcept {
        return PoolExecutor<OnLoop, OtherAlloc>(core_, a.value(), bits_);
    }
    PoolExecutor<OnLoop, std::allocator<void>> require(asio_ex::allocator_t<void>) const noexcept {
        return PoolExecutor<OnLoop, std::allocator<void>>(core_, std::allocator<void>(), bits_);
    }

    // ---- query ----
    static constexpr asio_ex::mapping_t query(asio_ex::mapping_t) noexcept { return asio_ex::mapping.thread; }
    boost::asio::execution_context& query(asio_ex::context_t) const noexcept { return context(); }
    asio_ex::blocking_t query(asio_ex::blocking_t) const noexcept {
        return (bits_ & ex_blocking_never) != 0 ? asio_ex::blocking_t(asio_ex::blocking.never)
                                                : asio_ex::blocking_t(asio_ex::blocking.possibly);
    }
    asio_ex::relationship_t query(asio_ex::relationship_t) const noexcept {
        return (bits_ & ex_continuation) != 0 ? asio_ex::relationship_t(asio_ex::relationship.continuation)
                                              : asio_ex::relationship_t(asio_ex::relationship.fork);
    }
    asio_ex::outstanding_work_t query(asio_ex::outstanding_work_t) const noexcept {
        return (bits_ & ex_tracked) != 0 ? asio_ex::outstanding_work_t(asio_ex::outstanding_work.tracked)
                                         : asio_ex::outstanding_work_t(asio_ex::outstanding_work.untracked);
    }
    template <class OtherAlloc>
    Alloc query(asio_ex::allocator_t<OtherAlloc>) const noexcept { return alloc_; }
    Alloc query(asio_ex::allocator_t<void>) const noexcept { return alloc_; }

    /// The execution context: a context owned by the pool (workers) or the callback
    /// thread's io_context (loop).
    boost::asio::execution_context& context() const noexcept {
        return OnLoop ? core_->loop_context() : core_->worker_context();
    }
    /// True on a worker (or the callback thread) of this executor's pool.
    bool running_in_this_thread() const noexcept {
        return OnLoop ? core_->on_loop() : core_->on_worker();
    }
    /// Internal: the pool's core.
    PoolCore* core() const noexcept { return core_; }

    /// Runs f: inline if blocking.possibly and already on a thread of this executor,
    /// otherwise queued (a worker task, or a handler on the callback thread). Throws the
    /// first stop's error once join() has finished.
    template <class F>
    void execute(F&& f) const {
        using Fn = std::decay_t<F>;
        if ((bits_ & ex_blocking_never) == 0 && running_in_this_thread()) {
            Fn tmp(std::forward<F>(f));
            try {
                tmp();
            } catch (...) {
                report_handler_error(core_, std::current_exception());
            }
            return;
        }
        if constexpr (OnLoop) {
            auto* j = LoopHandlerJob<Fn, Alloc>::make(alloc_, core_, std::forward<F>(f));
            try {
                core_->submit_loop_job(j);
            } catch (...) {
                j->free();
                throw;
            }
        } else {
            auto* j = WorkerHandlerJob<Fn, Alloc>::make(alloc_, core_, std::forward<F>(f));
            try {
                core_->submit_executor_job(j);
            } catch (...) {
                j->free();
                throw;
            }
        }
    }

    /// Same pool, allocator and properties.
    friend bool operator==(const PoolExecutor& a, const PoolExecutor& b) noexcept {
        return a.core_ == b.core_ && a.alloc_ == b.alloc_ && a.bits_ == b.bits_;
    }
    /// Not ==.
    friend bool operator!=(const PoolExecutor& a, const PoolExecutor& b) noexcept { return !(a == b); }

private:
    template <bool, class>
    friend class PoolExecutor;
    PoolExecutor with(unsigned bits) const noexcept { return PoolExecutor(core_, alloc_, bits); }
    void swap(PoolExecutor& o) noexcept {
        std::swap(core_, o.core_);
        std::swap(alloc_, o.alloc_);
        std::swap(bits_, o.bits_);
    }

    PoolCore* core_;
    Alloc alloc_;
    unsigned bits_;
};

template <class Ex>
struct is_loop_executor : std::false_type {};
template <class Alloc>
struct is_loop_executor<PoolExecutor<true, Alloc>> : std::true_type {};

/// True if ex runs handlers on core's callback thread.
template <class Ex>
bool is_loop_of(const Ex& ex, const PoolCore* core) noexcept {
    if constexpr (is_loop_executor<Ex>::value) {
        return ex.core() == core;
    } else if constexpr (std::is_same_v<Ex, boost::asio::any_io_executor>) {
#if !defined(BOOST_ASIO_NO_TYPEID)
        // Boost 1.74's target<T>() does not check the type: compare it first.
        using Loop = PoolExecutor<true, std::allocator<void>>;
        if (!ex || ex.target_type() != typeid(Loop)) return false;
        return ex.template target<Loop>()->core() == core;
#else
        (void)ex;
        (void)core;
        return false;  // completes through loop_executor's own path instead
#endif
    } else {
        return false;
    }
}

}  // namespace detail

/// An Asio executor running handlers on a pool's workers, with allocator Alloc.
template <class Alloc = std::allocator<void>>
using BasicWorkerExecutor = detail::PoolExecutor<false, Alloc>;
/// An Asio executor running handlers on a pool's callback thread, with allocator Alloc.
template <class Alloc = std::allocator<void>>
using BasicLoopExecutor = detail::PoolExecutor<true, Alloc>;
/// The type of worker_executor(pool).
using WorkerExecutor = BasicWorkerExecutor<>;
/// The type of loop_executor(pool).
using LoopExecutor = BasicLoopExecutor<>;

/// An Asio executor whose handlers run on pool's workers, one task each (post, dispatch,
/// defer, co_spawn). The pool must outlive it. Never throws.
inline WorkerExecutor worker_executor(ThreadPool& pool) noexcept {
    return WorkerExecutor(&pool.detail_core(), {}, 0);
}
/// An Asio executor whose handlers run on pool's callback thread, one at a time. The pool
/// must outlive it. Never throws.
inline LoopExecutor loop_executor(ThreadPool& pool) noexcept {
    return LoopExecutor(&pool.detail_core(), {}, 0);
}

namespace detail {

/// The completion signature of async_apply for result R.
template <class R>
struct AsyncApplySignature {
    using type = void(std::exception_ptr, R);
};
template <>
struct AsyncApplySignature<void> {
    using type = void(std::exception_ptr);
};
template <class R>
using async_apply_signature = typename AsyncApplySignature<R>::type;

/// Outstanding work on a handler's executor (keeps its context running), copyable: a
/// copy tracks work of its own. A standard executor is held as its outstanding_work.tracked
/// form (executor_work_guard's raw storage makes g++ -O2 -Wall warn -Wmaybe-uninitialized
/// in users' code); a legacy (Networking TS) executor through executor_work_guard.
template <class Ex, bool Standard = asio_ex::is_executor<Ex>::value>
class HandlerWork {
public:
    explicit HandlerWork(const Ex& ex) : ex_(boost::asio::prefer(ex, asio_ex::outstanding_work.tracked)) {}
    const auto& executor() const noexcept { return ex_; }

private:
    std::decay_t<decltype(boost::asio::prefer(std::declval<const Ex&>(), asio_ex::outstanding_work.tracked))> ex_;
};
template <class Ex>
class HandlerWork<Ex, false> {
public:
    explicit HandlerWork(const Ex& ex) : guard_(ex) {}
    Ex executor() const noexcept { return guard_.get_executor(); }

private:
    boost::asio::executor_work_guard<Ex> guard_;
};

/// Which async_apply() call is initiating on this thread right now (0: none): an initiation
/// that runs inside that call may throw to its caller; one that was deferred (use_awaitable
/// initiates at co_await, where throwing ends the program) must complete instead.
inline thread_local std::uint64_t async_apply_current = 0;
inline thread_local std::uint64_t async_apply_calls = 0;

/// One async_apply: the callable, its arguments, then the outcome and the completion
/// handler, in one allocation made with the handler's associated allocator.
template <class R, class Fn, class Tuple, class Handler>
class AsyncApplyJob final : public Job {
    using HandlerAlloc = boost::asio::associated_allocator_t<Handler>;
    using Mem = AllocatedJob<AsyncApplyJob, HandlerAlloc>;
    friend Mem;
    using HandlerEx = boost::asio::associated_executor_t<Handler, LoopExecutor>;
    using Work = HandlerWork<HandlerEx>;
    using Value = std::conditional_t<std::is_void_v<R>, char, R>;

    // Owns the job while its completion waits in the handler's executor; destroying it
    // unrun destroys the job and the handler.
    struct Deliver {
        AsyncApplyJob* job;
        explicit Deliver(AsyncApplyJob* j) noexcept : job(j) {}
        Deliver(Deliver&& o) noexcept : job(std::exchange(o.job, nullptr)) {}
        Deliver& operator=(Deliver&&) = delete;
        ~Deliver() {
            if (job) job->free();
        }
        void operator()() { std::exchange(job, nullptr)->deliver(); }
    };

public:
    template <class H, class F, class T>
    AsyncApplyJob(const typename Mem::JobAlloc& a, PoolCore* core, H&& h, F&& f, T&& args)
        : alloc_(a), core_(core), payload_(std::in_place, std::forward<F>(f), std::forward<T>(args)),
          handler_(std::forward<H>(h)) {
        HandlerEx ex = boost::asio::get_associated_executor(handler_, LoopExecutor(core, {}, 0));
        if (!is_loop_of(ex, core)) work_.emplace(ex);  // keeps the handler's context running
    }

    template <class H, class F, class T>
    static AsyncApplyJob* make(PoolCore* core, H&& h, F&& f, T&& args) {
        HandlerAlloc a = boost::asio::get_associated_allocator(h);
        return Mem::make(a, core, std::forward<H>(h), std::forward<F>(f), std::forward<T>(args));
    }
    void free() noexcept { Mem::free(this); }

    void run() noexcept override {
        core_->note_started();
        try {
            auto& [fn, args] = *payload_;
            if constexpr (std::is_void_v<R>)
                std::apply(std::move(fn), std::move(args));
            else
                value_.emplace(std::apply(std::move(fn), std::move(args)));
        } catch (...) {
            error_ = std::current_exception();
        }
        payload_.reset();
        core_->note_ran();
        core_->note_outcome(!error_);
        complete();
    }
    void discard() noexcept override {  // terminate() or shutdown(cancel_futures=true)
        payload_.reset();
        core_->note_cancelled();
        try {
            error_ = std::make_exception_ptr(CancelledError());
        } catch (...) {
            error_ = std::current_exception();
        }
        complete();
    }
    /// The pool did not accept the job (it stopped after async_apply() checked it) and the
    /// initiation was deferred past async_apply(): complete with e on the handler's executor,
    /// never inline (as Asio completes at once: as if by post). On the default executor
    /// (the callback thread) once join() has finished, and wherever the executor refuses it,
    /// the handler is destroyed unrun, as Asio does in a context that shut down.
    void fail_deferred(std::exception_ptr e) noexcept {
        error_ = std::move(e);
        try {
            if (!work_) {
                Function<void()> fn([this] { deliver(); });
                if (!core_->try_post_loop(fn)) free();
            } else {
                Work keep(*work_);  // the context stays alive while post() touches it
                boost::asio::post(keep.executor(), Deliver(this));  // owns the job from here
            }
        } catch (...) {
            // refused (post() destroyed the Deliver, and with it the job), or out of memory
            // before the job was handed over: the job and its handler are gone either way
        }
    }

private:
    // Hands the outcome to the handler on its executor, then releases the job's unit.
    void complete() noexcept {
        PoolCore* core = core_;
        if (!work_) {
            // The default: the pool's callback thread. Through the core, so that it runs
            // also after terminate() (loop_executor itself would drop it).
            core->post_loop(Function<void()>([this] { deliver(); }));
        } else {
            // Deliver may run (and free the job with its work_) before dispatch() returns:
            // a second guard keeps the handler's context from finishing (and being
            // destroyed) while dispatch() still touches it (Asio signals after unlocking).
            Work keep(*work_);
            try {
                boost::asio::dispatch(keep.executor(), Deliver(this));  // the job may be gone now
            } catch (...) {
                // The handler's executor refused it (e.g. a pool after join()): the
                // handler is destroyed unrun with the job, as Asio does.
            }
        }
        core->release_unit();
    }
    // Calls the handler with the outcome, after freeing the job (as Asio does). A value
    // whose move throws reaches the handler as that exception (with R{}); whatever throws,
    // the job is freed exactly once.
    void deliver() {
        std::exception_ptr e = std::move(error_);
        std::optional<Value> v;
        if (value_) {
            try {
                v.emplace(std::move(*value_));
            } catch (...) {
                e = std::current_exception();
            }
            value_.reset();
        }
        std::optional<Handler> h;
        try {
            h.emplace(std::move(handler_));
        } catch (...) {
            free();  // the handler cannot be called: it is destroyed with the job
            throw;
        }
        free();  // free the memory before the upcall, as Asio does
        if constexpr (std::is_void_v<R>)
            std::move(*h)(std::move(e));
        else if (v)
            std::move(*h)(std::move(e), std::move(*v));
        else
            std::move(*h)(std::move(e), R{});
    }

    typename Mem::JobAlloc alloc_;
    PoolCore* core_;
    std::optional<Payload<Fn, Tuple>> payload_;
    Handler handler_;
    std::optional<Work> work_;
    std::exception_ptr error_;
    std::optional<Value> value_;
};

/// The initiation of async_apply.
template <class R>
struct AsyncApplyInit {
    PoolCore* core;
    const std::uint64_t* thread;  // &async_apply_current of the thread that called async_apply()
    std::uint64_t call;           // the call (async_apply_current there while it initiates)

    template <class Handler, class F, class Tuple>
    void operator()(Handler&& handler, F&& f, Tuple&& args) const {
        using Job = AsyncApplyJob<R, std::decay_t<F>, std::decay_t<Tuple>, std::decay_t<Handler>>;
        Job* j = Job::make(core, std::forward<Handler>(handler), std::forward<F>(f),
                           std::forward<Tuple>(args));
        std::exception_ptr refused;
        try {
            core->submit(j);
            return;
        } catch (...) {
            // The pool stopped after async_apply() checked it. Inside async_apply() (a
            // plain handler, use_future): async_apply() throws, nothing started. Deferred
            // (use_awaitable initiates at co_await, where throwing is not allowed): complete
            // with the error on the handler's executor.
            if (thread == &async_apply_current && async_apply_current == call) {
                j->free();
                throw;
            }
            refused = std::current_exception();
        }
        // outside the handler block: this thread keeps no reference to the exception once
        // it is handed over (the handler may drop the last one on another thread)
        j->fail_deferred(std::move(refused));
    }
};

/// Marks the calling thread as inside async_apply() call `id` (restores the previous mark).
class AsyncApplyScope {
public:
    explicit AsyncApplyScope(std::uint64_t id) noexcept : prev_(std::exchange(async_apply_current, id)) {}
    ~AsyncApplyScope() { async_apply_current = prev_; }
    AsyncApplyScope(const AsyncApplyScope&) = delete;
    AsyncApplyScope& operator=(const AsyncApplyScope&) = delete;

private:
    std::uint64_t prev_;
};

}  // namespace detail

/// Runs f(args...) on a worker of pool as one task and completes `token` with
/// (std::exception_ptr, R) (just std::exception_ptr when R is void): the exception f threw,
/// CancelledError if the task was cancelled while queued (terminate(),
/// shutdown(cancel_futures=true)), else null and the value. A plain handler is called on its
/// associated executor, by default loop_executor(pool); use_awaitable and use_future work.
/// R must be default-constructible (the value passed with an error; also when moving the
/// value to the handler throws: the handler gets that exception). Throws the first stop's
/// error (ValueError/RuntimeError) if the pool does not accept work, also when it stops
/// during the call (then nothing started and the handler is destroyed unrun); an initiation
/// deferred past the call (use_awaitable) completes with that error on the handler's
/// executor instead.
template <class F, class... Args, class CompletionToken>
    requires task_callable<F, Args...>
auto async_apply(ThreadPool& pool, F&& f, std::tuple<Args...> args, CompletionToken&& token) {
    using R = detail::apply_result_t<F, Args...>;
    static_assert(std::is_void_v<R> || std::is_default_constructible_v<R>,
                  "async_apply: the result type must be default-constructible");
    using Tuple = std::tuple<std::decay_t<Args>...>;
    detail::PoolCore& core = pool.detail_core();
    core.check_accepting();
    const std::uint64_t call = ++detail::async_apply_calls;
    detail::AsyncApplyScope scope(call);
    return boost::asio::async_initiate<CompletionToken, detail::async_apply_signature<R>>(
        detail::AsyncApplyInit<R>{&core, &detail::async_apply_current, call}, token, std::forward<F>(f), Tuple(std::move(args)));
}

}  // namespace pypool
