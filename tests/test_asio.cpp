// Boost.Asio integration: worker_executor, loop_executor, async_apply (API.md section 8).
#include <utility>  // before Asio (see TOOLCHAIN.md)

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#if defined(BOOST_ASIO_HAS_CO_AWAIT)
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#endif
#include <boost/test/unit_test.hpp>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pypool/asio.hpp>
#include <pypool/pypool.hpp>

namespace asio = boost::asio;
namespace utf = boost::unit_test;

namespace {

std::string thread_name() {
    char buf[32] = {};
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    return buf;
}
bool is_worker_name(const std::string& n, const std::string& prefix = "pypool") {
    return n.rfind(prefix + "-", 0) == 0 && n != prefix + "-loop";
}

// Counts its live instances (copies included) and its calls: a handler destroyed unrun
// leaves live == 0 and ran == 0.
struct Counted {
    std::atomic<int>* live;
    std::atomic<int>* ran;
    Counted(std::atomic<int>* l, std::atomic<int>* r) : live(l), ran(r) { ++*live; }
    Counted(const Counted& o) : live(o.live), ran(o.ran) { ++*live; }
    Counted(Counted&& o) noexcept : live(o.live), ran(o.ran) { ++*live; }
    Counted& operator=(const Counted&) = delete;
    ~Counted() { --*live; }
    void operator()() { ++*ran; }
};

// Keeps the only worker of a pool busy until release().
struct Blocker {
    std::latch started{1};
    std::latch go{1};
    void block(pypool::ThreadPool& pool) {
        asio::post(pypool::worker_executor(pool), [this] {
            started.count_down();
            go.wait();
        });
        started.wait();
    }
    void release() { go.count_down(); }
};

// Keeps the callback thread of a pool busy until release().
struct LoopBlocker {
    std::latch started{1};
    std::latch go{1};
    void block(pypool::ThreadPool& pool) {
        asio::post(pypool::loop_executor(pool), [this] {
            started.count_down();
            go.wait();
        });
        started.wait();
    }
    void release() { go.count_down(); }
};

// A counting allocator, to see async_apply and post use the handler's allocator.
template <class T>
struct CountingAlloc {
    using value_type = T;
    std::atomic<int>* count;
    explicit CountingAlloc(std::atomic<int>* c) noexcept : count(c) {}
    template <class U>
    CountingAlloc(const CountingAlloc<U>& o) noexcept : count(o.count) {}
    T* allocate(std::size_t n) {
        ++*count;
        return std::allocator<T>().allocate(n);
    }
    void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
    template <class U>
    bool operator==(const CountingAlloc<U>& o) const noexcept {
        return count == o.count;
    }
};

}  // namespace

// ---- the executors ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(executors_satisfy_asio_executor_concept, *utf::timeout(60)) {
    static_assert(asio::execution::is_executor<pypool::WorkerExecutor>::value);
    static_assert(asio::execution::is_executor<pypool::LoopExecutor>::value);
    pypool::ThreadPool pool(1);
    auto w = pypool::worker_executor(pool);
    auto l = pypool::loop_executor(pool);
    BOOST_TEST((w == pypool::worker_executor(pool)));
    BOOST_TEST((l == pypool::loop_executor(pool)));
    asio::execution_context& wc = asio::query(w, asio::execution::context);
    asio::execution_context& lc = asio::query(l, asio::execution::context);
    BOOST_TEST(&wc == &w.context());
    BOOST_TEST(&lc == &l.context());
    BOOST_TEST(&wc != &lc);
    asio::any_io_executor any = w;  // the polymorphic executor of awaitables and co_spawn
    BOOST_TEST(static_cast<bool>(any));
    BOOST_TEST((asio::query(asio::require(w, asio::execution::blocking.never),
                            asio::execution::blocking) == asio::execution::blocking.never));
}

BOOST_AUTO_TEST_CASE(post_to_worker_executor_runs_on_a_worker, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::promise<std::string> where;
    asio::post(pypool::worker_executor(pool), [&] { where.set_value(thread_name()); });
    BOOST_TEST(is_worker_name(where.get_future().get()));
}

BOOST_AUTO_TEST_CASE(dispatch_and_defer_to_worker_executor_run_on_a_worker, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::promise<std::string> d, f;
    asio::dispatch(pypool::worker_executor(pool), [&] { d.set_value(thread_name()); });
    asio::defer(pypool::worker_executor(pool), [&] { f.set_value(thread_name()); });
    BOOST_TEST(is_worker_name(d.get_future().get()));
    BOOST_TEST(is_worker_name(f.get_future().get()));
}

BOOST_AUTO_TEST_CASE(dispatch_on_a_worker_runs_inline_post_does_not, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);  // the only worker is busy: a posted handler must wait
    std::promise<std::pair<bool, bool>> out;
    asio::post(pypool::worker_executor(pool), [&] {
        bool dispatched_inline = false;
        asio::dispatch(pypool::worker_executor(pool), [&] { dispatched_inline = true; });
        auto posted = std::make_shared<std::atomic<bool>>(false);
        asio::post(pypool::worker_executor(pool), [posted] { *posted = true; });
        out.set_value({dispatched_inline, posted->load()});
    });
    auto [dispatched, posted] = out.get_future().get();
    BOOST_TEST(dispatched);
    BOOST_TEST(!posted);
}

BOOST_AUTO_TEST_CASE(post_dispatch_defer_to_loop_executor_run_on_callback_thread,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .thread_name_prefix = "asl"});
    std::promise<std::string> p, d, f;
    asio::post(pypool::loop_executor(pool), [&] { p.set_value(thread_name()); });
    asio::dispatch(pypool::loop_executor(pool), [&] { d.set_value(thread_name()); });
    asio::defer(pypool::loop_executor(pool), [&] { f.set_value(thread_name()); });
    BOOST_TEST(p.get_future().get() == "asl-loop");
    BOOST_TEST(d.get_future().get() == "asl-loop");
    BOOST_TEST(f.get_future().get() == "asl-loop");
}

BOOST_AUTO_TEST_CASE(dispatch_on_callback_thread_runs_inline, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::promise<bool> out;
    asio::post(pypool::loop_executor(pool), [&] {
        bool ran = false;
        asio::dispatch(pypool::loop_executor(pool), [&] { ran = true; });
        out.set_value(ran);
    });
    BOOST_TEST(out.get_future().get());
}

BOOST_AUTO_TEST_CASE(strand_over_worker_executor_runs_handlers_one_at_a_time,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(4);
    auto strand = asio::make_strand(pypool::worker_executor(pool));
    int counter = 0;  // only touched inside the strand
    std::atomic<int> inside{0};
    std::atomic<bool> overlap{false};
    constexpr int n = 200;
    std::latch done(n);
    for (int i = 0; i < n; ++i) {
        asio::post(strand, [&] {
            if (inside.fetch_add(1) != 0) overlap = true;
            ++counter;
            inside.fetch_sub(1);
            done.count_down();
        });
    }
    done.wait();
    BOOST_TEST(!overlap.load());
    BOOST_TEST(counter == n);
}

BOOST_AUTO_TEST_CASE(worker_handler_uses_its_associated_allocator, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::atomic<int> allocations{0};
    std::promise<void> ran;
    auto ex = asio::require(pypool::worker_executor(pool),
                            asio::execution::allocator(CountingAlloc<void>(&allocations)));
    asio::execution::execute(ex, [&] { ran.set_value(); });
    ran.get_future().get();
    BOOST_TEST(allocations.load() == 1);
}

BOOST_AUTO_TEST_CASE(throwing_worker_handler_is_reported_and_counted_failed,
                     *utf::timeout(60)) {
    std::promise<std::string> reported;
    pypool::ThreadPool pool(pypool::PoolOptions{
        .processes = 1,
        .on_callback_error =
            [&](std::exception_ptr e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    reported.set_value(thread_name() + ":" + ex.what());
                }
            }});
    asio::post(pypool::worker_executor(pool), [] { throw std::runtime_error("boom"); });
    BOOST_TEST(reported.get_future().get() == "pypool-loop:boom");
    pool.close();
    pool.join();
    BOOST_TEST(pool.stats().failed == 1u);
}

// ---- acceptance rules ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(handlers_posted_after_close_run, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    pool.close();
    std::atomic<int> ran{0};
    asio::post(pypool::worker_executor(pool), [&] { ++ran; });
    asio::post(pypool::loop_executor(pool), [&] { ++ran; });
    pool.join();
    BOOST_TEST(ran.load() == 2);
}

BOOST_AUTO_TEST_CASE(handlers_posted_after_shutdown_run, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    pool.shutdown(false);
    std::atomic<int> ran{0};
    asio::post(pypool::worker_executor(pool), [&] { ++ran; });
    asio::post(pypool::loop_executor(pool), [&] { ++ran; });
    pool.join();
    BOOST_TEST(ran.load() == 2);
}

BOOST_AUTO_TEST_CASE(terminate_destroys_queued_worker_handlers_unrun, *utf::timeout(60)) {
    std::atomic<int> live{0}, ran{0};
    {
        pypool::ThreadPool pool(1);
        Blocker b;
        b.block(pool);
        for (int i = 0; i < 5; ++i) asio::post(pypool::worker_executor(pool), Counted(&live, &ran));
        BOOST_TEST(live.load() == 5);
        pool.terminate();
        BOOST_TEST(live.load() == 0);  // destroyed by terminate() itself
        b.release();
        pool.join();
        BOOST_TEST(pool.stats().cancelled == 5u);
    }
    BOOST_TEST(ran.load() == 0);
    BOOST_TEST(live.load() == 0);
}

BOOST_AUTO_TEST_CASE(terminate_destroys_queued_loop_handlers_unrun, *utf::timeout(60)) {
    std::atomic<int> live{0}, ran{0};
    {
        pypool::ThreadPool pool(1);
        LoopBlocker b;
        b.block(pool);
        for (int i = 0; i < 5; ++i) asio::post(pypool::loop_executor(pool), Counted(&live, &ran));
        pool.terminate();
        b.release();
        pool.join();
    }
    BOOST_TEST(ran.load() == 0);
    BOOST_TEST(live.load() == 0);
}

BOOST_AUTO_TEST_CASE(handlers_posted_after_terminate_before_join_are_destroyed_unrun,
                     *utf::timeout(60)) {
    std::atomic<int> live{0}, ran{0};
    pypool::ThreadPool pool(1);
    pool.terminate();
    BOOST_CHECK_NO_THROW(asio::post(pypool::worker_executor(pool), Counted(&live, &ran)));
    BOOST_CHECK_NO_THROW(asio::post(pypool::loop_executor(pool), Counted(&live, &ran)));
    pool.join();
    BOOST_TEST(ran.load() == 0);
    BOOST_TEST(live.load() == 0);
}

BOOST_AUTO_TEST_CASE(posting_after_join_throws_value_error_after_close, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.close();
    pool.join();
    std::atomic<int> live{0}, ran{0};
    BOOST_CHECK_THROW(asio::post(pypool::worker_executor(pool), Counted(&live, &ran)),
                      pypool::ValueError);
    BOOST_CHECK_THROW(asio::post(pypool::loop_executor(pool), Counted(&live, &ran)),
                      pypool::ValueError);
    BOOST_CHECK_THROW(asio::dispatch(pypool::worker_executor(pool), [] {}), pypool::ValueError);
    BOOST_TEST(live.load() == 0);
    BOOST_TEST(ran.load() == 0);
}

BOOST_AUTO_TEST_CASE(posting_after_join_throws_value_error_after_terminate, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.terminate();
    pool.join();
    BOOST_CHECK_THROW(asio::post(pypool::worker_executor(pool), [] {}), pypool::ValueError);
    BOOST_CHECK_THROW(asio::post(pypool::loop_executor(pool), [] {}), pypool::ValueError);
}

BOOST_AUTO_TEST_CASE(posting_after_join_throws_runtime_error_after_shutdown, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.shutdown();
    pool.terminate();  // the first stop decides the error
    pool.join();
    try {
        asio::post(pypool::worker_executor(pool), [] {});
        BOOST_FAIL("post did not throw");
    } catch (const pypool::RuntimeError& e) {
        BOOST_TEST(std::string(e.what()) == "cannot schedule new futures after shutdown");
    }
    BOOST_CHECK_THROW(asio::post(pypool::loop_executor(pool), [] {}), pypool::RuntimeError);
}

BOOST_AUTO_TEST_CASE(worker_handlers_count_as_tasks_in_stats, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    b.block(pool);  // one task
    asio::post(pypool::worker_executor(pool), [] {});
    asio::post(pypool::worker_executor(pool), [] {});
    auto s = pool.stats();
    BOOST_TEST(s.submitted == 3u);
    BOOST_TEST(s.running == 1u);
    BOOST_TEST(s.queued == 2u);
    b.release();
    pool.close();
    pool.join();
    s = pool.stats();
    BOOST_TEST(s.completed == 3u);
    BOOST_TEST(s.queued == 0u);
    BOOST_TEST(s.running == 0u);
}

// ---- async_apply ----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(async_apply_plain_handler_runs_on_callback_thread, *utf::timeout(60)) {
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .thread_name_prefix = "aap"});
    std::promise<std::pair<int, std::string>> out;
    pypool::async_apply(pool, [](int a, int b) { return a * b; }, std::tuple{6, 7},
                        [&](std::exception_ptr e, int v) {
                            BOOST_CHECK(!e);
                            out.set_value({v, thread_name()});
                        });
    auto [v, where] = out.get_future().get();
    BOOST_TEST(v == 42);
    BOOST_TEST(where == "aap-loop");
}

BOOST_AUTO_TEST_CASE(async_apply_handler_gets_the_exception, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::promise<std::exception_ptr> out;
    pypool::async_apply(pool, []() -> int { throw std::out_of_range("x"); }, std::tuple{},
                        [&](std::exception_ptr e, int) { out.set_value(e); });
    BOOST_CHECK_THROW(std::rethrow_exception(out.get_future().get()), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(async_apply_handler_bound_to_io_context_runs_there, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    asio::io_context ioc;
    std::thread::id where;
    int got = 0;
    pypool::async_apply(pool, [](int x) { return x + 1; }, std::tuple{1},
                        asio::bind_executor(ioc, [&](std::exception_ptr, int v) {
                            where = std::this_thread::get_id();
                            got = v;
                        }));
    ioc.run();  // returns only after the handler ran: async_apply keeps work on ioc
    BOOST_TEST(got == 2);
    BOOST_TEST((where == std::this_thread::get_id()));
}

BOOST_AUTO_TEST_CASE(async_apply_handler_bound_to_strand_runs_in_order, *utf::timeout(60)) {
    pypool::ThreadPool pool(4);
    asio::io_context ioc;
    auto strand = asio::make_strand(ioc);
    std::vector<int> got;  // only touched in the strand
    for (int i = 0; i < 50; ++i) {
        pypool::async_apply(pool, [](int x) { return x; }, std::tuple{i},
                            asio::bind_executor(strand, [&](std::exception_ptr e, int v) {
                                BOOST_CHECK(!e);
                                got.push_back(v);
                            }));
    }
    std::thread t([&] { ioc.run(); });
    ioc.run();
    t.join();
    BOOST_TEST(got.size() == 50u);
}

BOOST_AUTO_TEST_CASE(async_apply_handler_bound_to_worker_executor_runs_on_worker,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::promise<std::string> out;
    pypool::async_apply(pool, [] {}, std::tuple{},
                        asio::bind_executor(pypool::worker_executor(pool),
                                            [&](std::exception_ptr) { out.set_value(thread_name()); }));
    BOOST_TEST(is_worker_name(out.get_future().get()));
}

BOOST_AUTO_TEST_CASE(async_apply_use_future_gives_value_and_exception, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::future<int> f = pypool::async_apply(pool, [] { return 3; }, std::tuple{}, asio::use_future);
    BOOST_TEST(f.get() == 3);
    std::future<int> g = pypool::async_apply(
        pool, []() -> int { throw std::logic_error("bad"); }, std::tuple{}, asio::use_future);
    BOOST_CHECK_THROW(g.get(), std::logic_error);
    std::future<void> h = pypool::async_apply(pool, [] {}, std::tuple{}, asio::use_future);
    BOOST_CHECK_NO_THROW(h.get());
}

BOOST_AUTO_TEST_CASE(async_apply_uses_the_handlers_associated_allocator, *utf::timeout(60)) {
    struct Handler {
        using allocator_type = CountingAlloc<void>;
        std::atomic<int>* count;
        std::promise<int>* out;
        allocator_type get_allocator() const noexcept { return allocator_type(count); }
        void operator()(std::exception_ptr, int v) { out->set_value(v); }
    };
    pypool::ThreadPool pool(1);
    std::atomic<int> allocations{0};
    std::promise<int> out;
    pypool::async_apply(pool, [] { return 9; }, std::tuple{}, Handler{&allocations, &out});
    BOOST_TEST(out.get_future().get() == 9);
    BOOST_TEST(allocations.load() >= 1);
}

BOOST_AUTO_TEST_CASE(async_apply_queued_at_terminate_completes_with_cancelled_error,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    b.block(pool);
    std::promise<std::exception_ptr> plain;
    pypool::async_apply(pool, [] { return 1; }, std::tuple{},
                        [&](std::exception_ptr e, int) { plain.set_value(e); });
    std::future<void> fut = pypool::async_apply(pool, [] {}, std::tuple{}, asio::use_future);
    pool.terminate();
    BOOST_CHECK_THROW(std::rethrow_exception(plain.get_future().get()), pypool::CancelledError);
    BOOST_CHECK_THROW(fut.get(), pypool::CancelledError);
    b.release();
    pool.join();
    BOOST_TEST(pool.stats().cancelled == 2u);
}

BOOST_AUTO_TEST_CASE(async_apply_queued_at_shutdown_cancel_futures_completes_cancelled,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    b.block(pool);
    std::future<int> fut = pypool::async_apply(pool, [] { return 1; }, std::tuple{}, asio::use_future);
    pool.shutdown(false, true);
    BOOST_CHECK_THROW(fut.get(), pypool::CancelledError);
    b.release();
    pool.join();
}

BOOST_AUTO_TEST_CASE(async_apply_after_close_throws_value_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.close();
    BOOST_CHECK_THROW(pypool::async_apply(pool, [] {}, std::tuple{}, [](std::exception_ptr) {}),
                      pypool::ValueError);
    pool.join();
    BOOST_CHECK_THROW(pypool::async_apply(pool, [] {}, std::tuple{}, asio::use_future),
                      pypool::ValueError);
}

BOOST_AUTO_TEST_CASE(async_apply_after_shutdown_throws_runtime_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.shutdown();
    BOOST_CHECK_THROW(pypool::async_apply(pool, [] {}, std::tuple{}, asio::use_future),
                      pypool::RuntimeError);
}

BOOST_AUTO_TEST_CASE(async_apply_from_a_worker_after_close_is_accepted, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::promise<std::future<int>> inner;
    std::latch closed(1);
    asio::post(pypool::worker_executor(pool), [&] {
        closed.wait();
        inner.set_value(pypool::async_apply(pool, [] { return 4; }, std::tuple{}, asio::use_future));
    });
    pool.close();
    closed.count_down();
    BOOST_TEST(inner.get_future().get().get() == 4);
    pool.join();
}

BOOST_AUTO_TEST_CASE(async_apply_counts_as_task_in_stats, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto ok = pypool::async_apply(pool, [] { return 1; }, std::tuple{}, asio::use_future);
    auto bad = pypool::async_apply(pool, []() -> int { throw 1; }, std::tuple{}, asio::use_future);
    ok.wait();
    bad.wait();
    pool.close();
    pool.join();
    auto s = pool.stats();
    BOOST_TEST(s.submitted == 2u);
    BOOST_TEST(s.completed == 1u);
    BOOST_TEST(s.failed == 1u);
}

// ---- async_apply: a result whose move throws, a pool that stops during the call ------------

namespace {

// A result whose second move throws: the first one stores it in the job, the second hands
// it over. Default-constructed ones (passed with an error) move freely.
struct SecondMoveThrows {
    int value = 0;
    int moves = 0;
    bool armed = false;
    SecondMoveThrows() = default;
    explicit SecondMoveThrows(int v) : value(v), armed(true) {}
    SecondMoveThrows(SecondMoveThrows&& o) : value(o.value), moves(o.moves + 1), armed(o.armed) {
        if (armed && moves >= 2) throw std::length_error("second move");
    }
    SecondMoveThrows& operator=(SecondMoveThrows&&) = delete;
};

std::string what_of(std::exception_ptr e) {
    try {
        if (e) std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    }
    return "no exception";
}

// A completion token that defers the initiation until the returned function is called
// with a handler (as use_awaitable does at co_await, or Asio's later `deferred`).
struct lazy_t {};

// A handler whose first move closes the pool: async_apply has checked the pool, the pool
// stops before the job is submitted.
struct ClosesPoolOnMove {
    pypool::ThreadPool* pool;
    std::atomic<int>* calls;
    bool armed = true;
    ClosesPoolOnMove(pypool::ThreadPool* p, std::atomic<int>* c) : pool(p), calls(c) {}
    ClosesPoolOnMove(ClosesPoolOnMove&& o) noexcept : pool(o.pool), calls(o.calls), armed(false) {
        if (std::exchange(o.armed, false)) pool->close();
    }
    void operator()(std::exception_ptr) { ++*calls; }
};

}  // namespace

template <class Signature>
struct boost::asio::async_result<lazy_t, Signature> {
    template <class Initiation, class... InitArgs>
    static auto initiate(Initiation init, lazy_t, InitArgs... args) {
        return [init = std::move(init), ... args = std::move(args)](auto handler) mutable {
            std::move(init)(std::move(handler), std::move(args)...);
        };
    }
};

BOOST_AUTO_TEST_CASE(async_apply_result_whose_move_throws_reaches_default_handler,
                     *utf::timeout(60)) {
    std::atomic<int> live{0}, ran{0};
    {
        pypool::ThreadPool pool(pypool::PoolOptions{.processes = 1, .thread_name_prefix = "mt"});
        std::promise<std::tuple<std::string, std::string, bool>> out;
        pypool::async_apply(pool, [] { return SecondMoveThrows(5); }, std::tuple{},
                            [&, c = Counted(&live, &ran)](std::exception_ptr e, SecondMoveThrows v) {
                                out.set_value({what_of(e), thread_name(), v.armed});
                            });
        auto fut = out.get_future();
        BOOST_REQUIRE(fut.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
        auto [what, where, armed] = fut.get();
        BOOST_TEST(what == "second move");
        BOOST_TEST(where == "mt-loop");
        BOOST_TEST(!armed);  // a default-constructed value came with the error
        pool.close();
        pool.join();
        BOOST_TEST(pool.stats().failed == 0u);  // the task itself succeeded
    }
    BOOST_TEST(live.load() == 0);  // the handler was destroyed (ASan: nothing leaked)
}

BOOST_AUTO_TEST_CASE(async_apply_result_whose_move_throws_reaches_io_context_handler,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    asio::io_context ioc;
    std::string what;
    int calls = 0;
    pypool::async_apply(pool, [] { return SecondMoveThrows(5); }, std::tuple{},
                        asio::bind_executor(ioc, [&](std::exception_ptr e, SecondMoveThrows) {
                            what = what_of(e);
                            ++calls;
                        }));
    ioc.run_for(std::chrono::seconds(20));  // returns once the handler ran and the work is gone
    BOOST_TEST(calls == 1);
    BOOST_TEST(what == "second move");
    BOOST_TEST(ioc.stopped());
    ioc.restart();
    BOOST_TEST(ioc.run_for(std::chrono::seconds(5)) == 0u);  // no work left behind
}

BOOST_AUTO_TEST_CASE(async_apply_result_whose_move_throws_reaches_other_pools_worker_handler,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::promise<std::string> out;
    {
        pypool::ThreadPool other(1);
        pypool::async_apply(pool, [] { return SecondMoveThrows(5); }, std::tuple{},
                            asio::bind_executor(pypool::worker_executor(other),
                                                [&](std::exception_ptr e, SecondMoveThrows) {
                                                    out.set_value(what_of(e));
                                                }));
        auto fut = out.get_future();
        BOOST_REQUIRE(fut.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
        BOOST_TEST(fut.get() == "second move");
        other.close();
        other.join();  // the work guard on `other` was released
    }
}

BOOST_AUTO_TEST_CASE(async_apply_result_whose_move_throws_reaches_use_future, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::future<SecondMoveThrows> f =
        pypool::async_apply(pool, [] { return SecondMoveThrows(5); }, std::tuple{}, asio::use_future);
    BOOST_REQUIRE(f.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    BOOST_CHECK_THROW(f.get(), std::length_error);
}

BOOST_AUTO_TEST_CASE(async_apply_throws_if_pool_stops_during_the_call, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::atomic<int> calls{0};
    BOOST_CHECK_THROW(pypool::async_apply(pool, [] {}, std::tuple{}, ClosesPoolOnMove(&pool, &calls)),
                      pypool::ValueError);
    BOOST_TEST(pool.stats().submitted == 0u);  // nothing started
    pool.join();
    BOOST_TEST(calls.load() == 0);  // the handler was destroyed unrun, as the call threw
}

BOOST_AUTO_TEST_CASE(deferred_async_apply_after_stop_completes_on_handlers_executor,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 1, .thread_name_prefix = "df"});
    asio::io_context ioc;
    bool initiating = false;
    bool ran_inline = true;
    std::string what;
    auto op = pypool::async_apply(pool, [] { return 1; }, std::tuple{}, lazy_t{});
    auto op2 = pypool::async_apply(pool, [] { return 2; }, std::tuple{}, lazy_t{});
    pool.close();  // the pool stops between the call and the initiation
    initiating = true;
    op(asio::bind_executor(ioc, [&](std::exception_ptr e, int) {
        ran_inline = initiating;
        what = what_of(e);
    }));
    initiating = false;
    ioc.run_for(std::chrono::seconds(20));
    BOOST_TEST(!ran_inline);  // on ioc.run(), not inside the initiation
    BOOST_TEST(what == "Pool not running");
    // the default executor: the pool's callback thread (it still runs until join())
    std::promise<std::pair<std::string, std::string>> out;
    op2([&](std::exception_ptr e, int) { out.set_value({what_of(e), thread_name()}); });
    auto fut = out.get_future();
    BOOST_REQUIRE(fut.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
    auto [w2, where] = fut.get();
    BOOST_TEST(w2 == "Pool not running");
    BOOST_TEST(where == "df-loop");
    pool.join();
}

BOOST_AUTO_TEST_CASE(deferred_async_apply_after_join_destroys_default_handler_unrun,
                     *utf::timeout(60)) {
    std::atomic<int> live{0}, ran{0};
    pypool::ThreadPool pool(1);
    auto op = pypool::async_apply(pool, [] {}, std::tuple{}, lazy_t{});
    pool.close();
    pool.join();  // the callback thread has finished: nothing can run the handler
    op([c = Counted(&live, &ran)](std::exception_ptr) mutable { c(); });
    BOOST_TEST(ran.load() == 0);
    BOOST_TEST(live.load() == 0);
}

// ---- coroutines -----------------------------------------------------------------------------
#if defined(BOOST_ASIO_HAS_CO_AWAIT)

namespace {
asio::awaitable<std::string> where_am_i() { co_return thread_name(); }
}  // namespace

BOOST_AUTO_TEST_CASE(co_spawn_on_worker_executor_runs_on_workers, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    auto f = asio::co_spawn(pypool::worker_executor(pool), where_am_i(), asio::use_future);
    BOOST_TEST(is_worker_name(f.get()));
}

BOOST_AUTO_TEST_CASE(co_spawn_on_loop_executor_runs_on_callback_thread, *utf::timeout(60)) {
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .thread_name_prefix = "csl"});
    auto f = asio::co_spawn(pypool::loop_executor(pool), where_am_i(), asio::use_future);
    BOOST_TEST(f.get() == "csl-loop");
}

BOOST_AUTO_TEST_CASE(co_await_async_apply_returns_value, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    asio::io_context ioc;
    auto f = asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<std::pair<int, std::string>> {
            std::string task_thread;
            int v = co_await pypool::async_apply(
                pool,
                [&](int x) {
                    task_thread = thread_name();
                    return x * 2;
                },
                std::tuple{21}, asio::use_awaitable);
            co_return std::pair{v, task_thread};
        },
        asio::use_future);
    const auto caller = std::this_thread::get_id();
    std::thread::id resumed;
    asio::post(ioc, [&] { resumed = std::this_thread::get_id(); });
    ioc.run();
    auto [v, task_thread] = f.get();
    BOOST_TEST(v == 42);
    BOOST_TEST(is_worker_name(task_thread));
    BOOST_TEST((resumed == caller));
}

BOOST_AUTO_TEST_CASE(co_await_async_apply_rethrows_exception, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    asio::io_context ioc;
    auto f = asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<std::string> {
            try {
                co_await pypool::async_apply(
                    pool, []() -> int { throw std::invalid_argument("nope"); }, std::tuple{},
                    asio::use_awaitable);
            } catch (const std::invalid_argument& e) {
                co_return std::string(e.what());
            }
            co_return std::string("no exception");
        },
        asio::use_future);
    ioc.run();
    BOOST_TEST(f.get() == "nope");
}

BOOST_AUTO_TEST_CASE(co_await_async_apply_of_void_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::atomic<int> ran{0};
    auto f = asio::co_spawn(
        pypool::loop_executor(pool),
        [&]() -> asio::awaitable<void> {
            co_await pypool::async_apply(pool, [&] { ++ran; }, std::tuple{}, asio::use_awaitable);
            co_await pypool::async_apply(pool, [&] { ++ran; }, std::tuple{}, asio::use_awaitable);
        },
        asio::use_future);
    f.get();
    BOOST_TEST(ran.load() == 2);
}

BOOST_AUTO_TEST_CASE(coroutine_on_worker_executor_fans_out_and_gathers, *utf::timeout(60)) {
    pypool::ThreadPool pool(3);
    auto f = asio::co_spawn(
        pypool::worker_executor(pool),
        [&]() -> asio::awaitable<int> {
            int sum = 0;
            for (int i = 1; i <= 10; ++i)
                sum += co_await pypool::async_apply(pool, [](int x) { return x * x; },
                                                    std::tuple{i}, asio::use_awaitable);
            co_return sum;
        },
        asio::use_future);
    BOOST_TEST(f.get() == 385);
}

BOOST_AUTO_TEST_CASE(co_await_async_apply_after_close_outside_pool_throws_in_coroutine,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    asio::io_context ioc;
    auto f = asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<std::string> {
            try {
                // checked at the call: throws at once, inside the coroutine
                pool.close();
                co_await pypool::async_apply(pool, [] {}, std::tuple{}, asio::use_awaitable);
            } catch (const pypool::ValueError& e) {
                co_return std::string(e.what());
            }
            co_return std::string("accepted");
        },
        asio::use_future);
    ioc.run();
    BOOST_TEST(f.get() == "Pool not running");
    pool.join();
}

BOOST_AUTO_TEST_CASE(awaitable_made_before_close_awaited_after_close_completes_with_error,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    asio::io_context ioc;
    auto f = asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<std::string> {
            auto op = pypool::async_apply(pool, [] {}, std::tuple{}, asio::use_awaitable);
            pool.close();  // the pool stops between the call and the co_await
            try {
                co_await std::move(op);
            } catch (const pypool::ValueError& e) {
                co_return std::string(e.what());
            }
            co_return std::string("accepted");
        },
        asio::use_future);
    ioc.run();
    BOOST_TEST(f.get() == "Pool not running");
    pool.join();
}

BOOST_AUTO_TEST_CASE(co_await_async_apply_queued_at_terminate_throws_cancelled_error,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    b.block(pool);
    asio::io_context ioc;
    std::latch awaiting(1);
    auto f = asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<std::string> {
            try {
                auto op = pypool::async_apply(pool, [] { return 1; }, std::tuple{},
                                              asio::use_awaitable);
                asio::post(ioc, [&] { awaiting.count_down(); });  // runs once we wait
                co_await std::move(op);
            } catch (const pypool::CancelledError&) {
                co_return std::string("cancelled");
            }
            co_return std::string("ran");
        },
        asio::use_future);
    std::thread t([&] { ioc.run(); });
    awaiting.wait();
    pool.terminate();
    t.join();
    BOOST_TEST(f.get() == "cancelled");
    b.release();
    pool.join();
}

BOOST_AUTO_TEST_CASE(join_waits_for_coroutines_spawned_on_the_pool, *utf::timeout(60)) {
    std::atomic<bool> finished{false};
    pypool::ThreadPool pool(2);
    asio::co_spawn(
        pypool::worker_executor(pool),
        [&]() -> asio::awaitable<void> {
            for (int i = 0; i < 5; ++i)
                co_await pypool::async_apply(pool, [] {}, std::tuple{}, asio::use_awaitable);
            finished = true;
        },
        [](std::exception_ptr) {});
    pool.close();
    pool.join();
    BOOST_TEST(finished.load());
}

#endif  // BOOST_ASIO_HAS_CO_AWAIT
