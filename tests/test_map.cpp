// map, map_async and MapResult.
#include <boost/test/unit_test.hpp>

#include <pypool/pypool.hpp>

#include <range/v3/view/iota.hpp>
#include <range/v3/view/transform.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <latch>
#include <memory>
#include <numeric>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

#include "bulk_test_util.hpp"
#include "live_count.hpp"

// Counts heap allocations (operator new) to show that results need none per item.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // malloc/free pairs below
#endif
namespace {
std::atomic<long> g_allocs{0};
}  // namespace
void* operator new(std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace utf = boost::unit_test;
using pypool::ThreadPool;

namespace {
int sqr(int x) { return x * x; }
std::vector<int> squares(int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i) v.push_back(i * i);
    return v;
}
}  // namespace

BOOST_AUTO_TEST_CASE(map_returns_results_in_input_order, *utf::timeout(60)) {
    ThreadPool pool(4);
    std::vector<int> in(1000);
    std::iota(in.begin(), in.end(), 0);
    for (std::size_t cs : {0, 1, 7, 100, 5000}) BOOST_TEST(pool.map(sqr, in, cs) == squares(1000));
}

BOOST_AUTO_TEST_CASE(map_default_chunksize_is_pythons_rule, *utf::timeout(60)) {
    ThreadPool pool(4);
    // ceil(100 / 16) = 7 items per chunk -> 15 chunks (tasks)
    auto before = pool.stats().submitted;
    (void)pool.map(sqr, std::vector<int>(100, 1));
    BOOST_TEST(pool.stats().submitted - before == 15U);
    before = pool.stats().submitted;
    (void)pool.map(sqr, std::vector<int>(100, 1), 20);
    BOOST_TEST(pool.stats().submitted - before == 5U);
    before = pool.stats().submitted;
    (void)pool.map_async(sqr, std::vector<int>(16, 1)).get();  // 16 / 16 = 1 per chunk
    BOOST_TEST(pool.stats().submitted - before == 16U);
}

BOOST_AUTO_TEST_CASE(map_takes_braced_lists, *utf::timeout(60)) {
    ThreadPool pool(2);
    BOOST_TEST(pool.map(sqr, {1, 2, 3}) == (std::vector<int>{1, 4, 9}));
    BOOST_TEST(pool.map_async(sqr, {4, 5}).get() == (std::vector<int>{16, 25}));
}

BOOST_AUTO_TEST_CASE(map_takes_cxx20_and_range_v3_views, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto std_view = std::views::iota(0, 10) | std::views::transform([](int x) { return x; });
    BOOST_TEST(pool.map(sqr, std_view) == squares(10));
    BOOST_TEST(pool.map(sqr, ranges::views::iota(0, 10)) == squares(10));
    auto rv3 = ranges::views::iota(0, 10) | ranges::views::transform([](int x) { return x; });
    BOOST_TEST(pool.map_async(sqr, rv3).get() == squares(10));
    BOOST_TEST(pool.map_async(sqr, std::views::iota(0, 10)).get() == squares(10));
}

BOOST_AUTO_TEST_CASE(map_moves_an_rvalue_container_into_the_call, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<std::unique_ptr<int>> in;
    for (int i = 0; i < 20; ++i) in.push_back(std::make_unique<int>(i));
    // elements of an owned container arrive as rvalues: a by-value parameter takes them
    auto out = pool.map([](std::unique_ptr<int> p) { return *p * 2; }, std::move(in), 3);
    BOOST_TEST(out.size() == 20U);
    BOOST_TEST(out[19] == 38);
    std::vector<std::unique_ptr<int>> in2;
    in2.push_back(std::make_unique<int>(7));
    auto r = pool.map_async([](std::unique_ptr<int> p) { return *p; }, std::move(in2));
    BOOST_TEST(r.get() == std::vector<int>{7});
}

BOOST_AUTO_TEST_CASE(map_passes_elements_of_an_lvalue_range_as_lvalues, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<int> in{1, 2, 3, 4};
    auto out = pool.map([](int& x) { return ++x; }, in);  // blocking map refers to them
    BOOST_TEST(out == (std::vector<int>{2, 3, 4, 5}));
    BOOST_TEST(in == (std::vector<int>{2, 3, 4, 5}));
    // map_async copies the elements, so a non-const reference parameter does not compile
    // there (tests/compile_fail/map_async_ref_param.cpp); by value or const& it reads them
    std::vector<int> in2{1, 2};
    auto r = pool.map_async([](const int& x) { return x + 1; }, in2);
    BOOST_TEST(r.get() == (std::vector<int>{2, 3}));
    BOOST_TEST(in2 == (std::vector<int>{1, 2}));
}

BOOST_AUTO_TEST_CASE(map_of_a_void_function_yields_none, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::atomic<int> calls{0};
    std::vector<pypool::None> out = pool.map([&](int) { ++calls; }, {1, 2, 3});
    BOOST_TEST(out.size() == 3U);
    BOOST_TEST((out[0] == pypool::None{}));
    BOOST_TEST(calls.load() == 3);
    auto r = pool.map_async([](int) {}, std::vector<int>{1});
    BOOST_TEST(r.get().size() == 1U);
}

BOOST_AUTO_TEST_CASE(map_with_move_only_results, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto out = pool.map([](int x) { return std::make_unique<std::string>(std::to_string(x)); },
                        ranges::views::iota(0, 50), 4);
    BOOST_TEST(out.size() == 50U);
    BOOST_TEST(*out[42] == "42");
    auto r = pool.map_async([](int x) { return std::make_unique<int>(x); }, {1, 2});
    auto v = std::move(r).get();
    BOOST_TEST(*v[1] == 2);
}

BOOST_AUTO_TEST_CASE(map_failure_reports_the_lowest_failing_position, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::latch later_failed(1);
    auto f = [&](int x) {
        if (x == 3) {
            later_failed.wait();  // position 70 fails first
            throw std::runtime_error("3");
        }
        if (x == 70) {
            later_failed.count_down();
            throw std::runtime_error("70");
        }
        return x;
    };
    try {
        (void)pool.map(f, ranges::views::iota(0, 100), 1);
        BOOST_FAIL("map did not throw");
    } catch (const std::runtime_error& e) {
        BOOST_TEST(std::string(e.what()) == "3");
    }
}

BOOST_AUTO_TEST_CASE(map_failure_does_not_stop_other_items, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::atomic<int> ran{0};
    auto f = [&](int x) {
        ++ran;
        if (x % 10 == 2) throw std::runtime_error("bad");  // inside every chunk of 10
        return x;
    };
    auto r = pool.map_async(f, ranges::views::iota(0, 100), {.chunksize = 10});
    BOOST_CHECK_THROW(r.get(), std::runtime_error);
    BOOST_TEST(ran.load() == 100);  // the rest of each failing chunk ran too
    BOOST_TEST(r.completed() == 100U);
}

BOOST_AUTO_TEST_CASE(map_catches_exceptions_not_derived_from_std_exception, *utf::timeout(60)) {
    ThreadPool pool(2);
    BOOST_CHECK_THROW(pool.map([](int x) { if (x == 5) throw 42; return x; }, ranges::views::iota(0, 10)),
                      int);
    auto r = pool.map_async([](int) -> int { throw std::string("s"); }, {1});
    BOOST_CHECK_THROW(r.get(), std::string);
}

BOOST_AUTO_TEST_CASE(map_input_that_throws_makes_the_call_throw, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::atomic<int> calls{0};
    auto f = [&](int x) { ++calls; return x; };
    BOOST_CHECK_THROW(pool.map(f, bulk_test::ThrowingRange(10, 3)), bulk_test::SayWhenError);
    BOOST_CHECK_THROW(pool.map_async(f, bulk_test::ThrowingRange(1, -1)), bulk_test::SayWhenError);
    BOOST_TEST(calls.load() == 0);  // the whole input is read first, as in Python
}

BOOST_AUTO_TEST_CASE(map_async_callback_gets_the_vector_on_the_callback_thread, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<int> seen;  // written by the callback only; read after get(): no lock needed
    std::string thread;
    int calls = 0;
    auto r = pool.map_async(sqr, ranges::views::iota(0, 10),
                            {.callback = [&](const std::vector<int>& v) {
                                seen = v;
                                thread = bulk_test::thread_name();
                                ++calls;
                            }});
    BOOST_TEST(r.get() == squares(10));
    BOOST_TEST(seen == squares(10));  // ready only after the callback returned
    BOOST_TEST(thread == "pypool-loop");
    BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(map_async_error_callback_gets_the_lowest_failure, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::exception_ptr got;
    bool callback_called = false;
    auto r = pool.map_async(
        [](int x) { if (x == 4 || x == 8) throw std::runtime_error(std::to_string(x)); return x; },
        ranges::views::iota(0, 10),
        {.chunksize = 1,
         .callback = [&](const std::vector<int>&) { callback_called = true; },
         .error_callback = [&](std::exception_ptr e) { got = e; }});
    r.wait();
    BOOST_TEST(!callback_called);
    BOOST_REQUIRE(got);
    BOOST_CHECK_EXCEPTION(std::rethrow_exception(got), std::runtime_error,
                          [](const std::runtime_error& e) { return std::string(e.what()) == "4"; });
    BOOST_TEST(!r.successful());
}

BOOST_AUTO_TEST_CASE(map_async_of_empty_input_is_ready_at_once, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto r = pool.map_async(sqr, std::vector<int>{});
    BOOST_TEST(r.ready());
    BOOST_TEST(r.get().empty());
    BOOST_TEST(r.total() == 0U);
    BOOST_TEST(pool.map(sqr, std::vector<int>{}).empty());
}

BOOST_AUTO_TEST_CASE(map_async_of_empty_input_with_callback_calls_it_with_empty_vector,
                     *utf::timeout(60)) {
    ThreadPool pool(2);
    int calls = 0;
    std::size_t size = 99;
    auto r = pool.map_async(sqr, std::vector<int>{},
                            {.callback = [&](const std::vector<int>& v) { ++calls; size = v.size(); }});
    r.wait();
    BOOST_TEST(calls == 1);
    BOOST_TEST(size == 0U);
}

BOOST_AUTO_TEST_CASE(map_result_completed_and_total_are_live, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::latch gate(1);
    auto r = pool.map_async([&](int x) { if (x == 5) gate.wait(); return x; },
                            ranges::views::iota(0, 10), {.chunksize = 1});
    BOOST_TEST(r.total() == 10U);
    while (r.completed() < 9) std::this_thread::yield();  // every item but 5 finishes
    BOOST_TEST(r.completed() == 9U);
    BOOST_TEST(!r.ready());
    gate.count_down();
    BOOST_TEST(r.get().size() == 10U);
    BOOST_TEST(r.completed() == 10U);
    pypool::MapResult<int> empty;
    BOOST_TEST(empty.completed() == 0U);
    BOOST_TEST(empty.total() == 0U);
    BOOST_TEST(!empty.valid());
}

BOOST_AUTO_TEST_CASE(map_result_cancel_succeeds_before_any_chunk_started, *utf::timeout(60)) {
    ThreadPool pool(1);
    std::latch started(1), gate(1);
    auto blocker = pool.apply_async([&] { started.count_down(); gate.wait(); });
    started.wait();
    std::atomic<int> calls{0};
    std::exception_ptr err;
    auto r = pool.map_async([&](int x) { ++calls; return x; }, ranges::views::iota(0, 10),
                            {.chunksize = 2, .error_callback = [&](std::exception_ptr e) { err = e; }});
    BOOST_TEST(r.cancel());
    BOOST_TEST(r.cancelled());
    BOOST_CHECK_THROW(r.get(), pypool::CancelledError);
    BOOST_TEST(static_cast<bool>(err));  // error_callback got CancelledError before ready
    gate.count_down();
    blocker.get();
    pool.close();
    pool.join();
    BOOST_TEST(calls.load() == 0);
    BOOST_TEST(pool.stats().cancelled == 5U);  // its five chunks
}

BOOST_AUTO_TEST_CASE(map_result_cancel_fails_once_a_chunk_started, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::latch started(1), gate(1);
    auto r = pool.map_async([&](int x) { if (x == 0) { started.count_down(); gate.wait(); } return x; },
                            ranges::views::iota(0, 10), {.chunksize = 1});
    started.wait();
    BOOST_TEST(!r.cancel());
    BOOST_TEST(!r.cancelled());
    gate.count_down();
    BOOST_TEST(r.get().size() == 10U);
}

BOOST_AUTO_TEST_CASE(map_partly_cancelled_by_terminate_completes_as_cancelled, *utf::timeout(60)) {
    ThreadPool pool(1);
    std::latch started(1), gate(1);
    auto r = pool.map_async([&](int x) { if (x == 0) { started.count_down(); gate.wait(); } return x; },
                            ranges::views::iota(0, 4), {.chunksize = 1});
    started.wait();
    pool.terminate();
    BOOST_TEST(!r.ready());  // its running chunk still runs
    gate.count_down();
    r.wait();
    BOOST_TEST(r.cancelled());
    BOOST_CHECK_THROW(r.get(), pypool::CancelledError);
    pool.join();
}

BOOST_AUTO_TEST_CASE(map_partly_cancelled_by_shutdown_cancel_futures_is_cancelled,
                     *utf::timeout(60)) {
    ThreadPool pool(1);
    std::latch started(1), gate(1);
    auto r = pool.map_async(
        [&](int x) { if (x == 0) { started.count_down(); gate.wait(); } if (x == 1) throw 1; return x; },
        ranges::views::iota(0, 4), {.chunksize = 1});
    started.wait();
    pool.shutdown(false, true);
    gate.count_down();
    r.wait();
    BOOST_TEST(r.cancelled());  // whatever else failed
    BOOST_CHECK_THROW(r.get(), pypool::CancelledError);
    pool.join();
}

BOOST_AUTO_TEST_CASE(map_terminate_before_start_cancels_everything, *utf::timeout(60)) {
    ThreadPool pool(1);
    std::latch started(1), gate(1);
    auto blocker = pool.apply_async([&] { started.count_down(); gate.wait(); });
    started.wait();
    auto r = pool.map_async(sqr, ranges::views::iota(0, 8), {.chunksize = 2});
    pool.terminate();
    BOOST_TEST(r.cancelled());
    BOOST_CHECK_THROW(r.get(), pypool::CancelledError);
    gate.count_down();
    pool.join();
}

BOOST_AUTO_TEST_CASE(map_after_close_throws_value_error, *utf::timeout(60)) {
    ThreadPool pool(2);
    pool.close();
    BOOST_CHECK_THROW(pool.map(sqr, {1}), pypool::ValueError);
    BOOST_CHECK_THROW(pool.map_async(sqr, std::vector<int>{}), pypool::ValueError);
    pool.join();
}

BOOST_AUTO_TEST_CASE(map_on_a_worker_runs_queued_chunks_while_waiting, *utf::timeout(60)) {
    ThreadPool pool(1);
    auto v = pool.apply([&] { return pool.map(sqr, ranges::views::iota(0, 20), 1); });
    BOOST_TEST(v == squares(20));
}

BOOST_AUTO_TEST_CASE(map_async_from_a_callback_after_close_is_accepted, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::latch gate(1);
    pypool::MapResult<int> inner;
    auto r = pool.apply_async([&] { gate.wait(); return 1; }, std::tuple{},
                              {.callback = [&](const int&) { inner = pool.map_async(sqr, {1, 2, 3}); }});
    pool.close();
    gate.count_down();
    r.get();
    pool.join();
    BOOST_TEST(inner.get() == (std::vector<int>{1, 4, 9}));
}

BOOST_AUTO_TEST_CASE(map_allocates_per_chunk_not_per_item, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<int> in(10000, 3);
    const long before = g_allocs.load();
    auto out = pool.map(sqr, in, 1000);
    const long used = g_allocs.load() - before;
    BOOST_TEST(out.size() == 10000U);
    BOOST_TEST(used < 50);  // state, chunk array, result buffer, final vector: not 10000
    const long before2 = g_allocs.load();
    auto r = pool.map_async(sqr, ranges::views::iota(0, 10000), {.chunksize = 100});
    BOOST_TEST(r.get().size() == 10000U);
    BOOST_TEST(g_allocs.load() - before2 < 50);
}

namespace {
using LiveInput = Live<0>;
using LiveFn = Live<1>;
}  // namespace

BOOST_AUTO_TEST_CASE(cancelled_map_async_releases_its_input_and_function_at_once,
                     *utf::timeout(60)) {
    ThreadPool pool(1);
    std::latch started(1), go(1);
    auto blocker = pool.apply_async([&] {
        started.count_down();
        go.wait();
    });
    started.wait();
    {
        auto m = pool.map_async([f = LiveFn()](const LiveInput&) { return 1; },
                                std::vector<LiveInput>(3), {.chunksize = 1});
        BOOST_TEST(LiveInput::count.load() >= 3);
        BOOST_TEST(LiveFn::count.load() >= 1);
        BOOST_TEST(m.cancel());
        // the handle is alive and the cancelled chunks are still queued behind the blocker
        BOOST_TEST(LiveInput::count.load() == 0);
        BOOST_TEST(LiveFn::count.load() == 0);
        BOOST_CHECK_THROW(m.get(), pypool::CancelledError);
        go.count_down();
        blocker.get();
    }
    pool.close();
    pool.join();
}

BOOST_AUTO_TEST_CASE(finished_map_async_releases_its_input_and_function, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto m = pool.map_async([f = LiveFn()](const LiveInput&) { return 1; }, std::vector<LiveInput>(5),
                            {.chunksize = 2});
    BOOST_TEST(m.get() == std::vector<int>(5, 1));
    BOOST_TEST(LiveInput::count.load() == 0);
    BOOST_TEST(LiveFn::count.load() == 0);  // while the handle is alive
}
