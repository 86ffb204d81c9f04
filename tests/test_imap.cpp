// imap and IMapIterator (ordered delivery, laziness, per-item failures, lifecycle).
#include <boost/test/unit_test.hpp>

#include <pypool/pypool.hpp>

#include <range/v3/view/iota.hpp>
#include <range/v3/view/take.hpp>
#include <range/v3/view/transform.hpp>
#include <range/v3/range/conversion.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <latch>
#include <limits>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

#include "bulk_test_util.hpp"

// Counts heap allocations (operator new) to show that results need none per item.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // malloc/free pairs below
#endif
namespace {
std::atomic<long> g_allocs{0};
std::atomic<std::size_t> g_largest{0};  // the largest single allocation so far
}  // namespace
void* operator new(std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    std::size_t big = g_largest.load(std::memory_order_relaxed);
    while (n > big && !g_largest.compare_exchange_weak(big, n, std::memory_order_relaxed)) {
    }
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using pypool::ThreadPool;

namespace {
int sqr(int x) { return x * x; }
std::vector<int> squares(int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i) v.push_back(i * i);
    return v;
}
template <class It>
auto drain(It& it) {
    std::vector<std::remove_cvref_t<decltype(*it.next())>> out;
    while (auto x = it.next()) out.push_back(std::move(*x));
    return out;
}
}  // namespace

static_assert(std::ranges::input_range<pypool::IMapIterator<int>>);
static_assert(!std::copy_constructible<pypool::IMapIterator<int>>);
static_assert(std::movable<pypool::IMapIterator<int>>);

BOOST_AUTO_TEST_CASE(imap_yields_results_in_input_order, *utf::timeout(60)) {
    ThreadPool pool(4);
    for (std::size_t cs : {1, 3, 7, 100, 1000}) {
        std::vector<int> got;
        for (int x : pool.imap(sqr, ranges::views::iota(0, 300), cs)) got.push_back(x);
        BOOST_TEST(got == squares(300));
    }
}

BOOST_AUTO_TEST_CASE(imap_next_returns_nullopt_when_exhausted, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto it = pool.imap(sqr, std::vector<int>{1, 2});
    BOOST_TEST(*it.next() == 1);
    BOOST_TEST(*it.next() == 4);
    BOOST_TEST(!it.next().has_value());
    BOOST_TEST(!it.next().has_value());
}

BOOST_AUTO_TEST_CASE(imap_takes_braced_lists_and_views, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto a = pool.imap(sqr, {1, 2, 3});
    BOOST_TEST(drain(a) == (std::vector<int>{1, 4, 9}));
    auto b = pool.imap(sqr, {1, 2, 3}, pypool::IMapOptions{.chunksize = 2, .max_in_flight = 1});
    BOOST_TEST(drain(b) == (std::vector<int>{1, 4, 9}));
    auto c = pool.imap(sqr, std::views::iota(0, 10) | std::views::transform([](int x) { return x; }));
    BOOST_TEST(drain(c) == squares(10));
    std::vector<int> lv{0, 1, 2};
    auto d = pool.imap([](const int& x) { return x * x; }, lv);  // refers to lv
    BOOST_TEST(drain(d) == squares(3));
}

BOOST_AUTO_TEST_CASE(imap_works_with_range_v3_views_taking_it_as_lvalue, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto it = pool.imap(sqr, ranges::views::iota(0));  // endless
    std::vector<int> got = it | ranges::views::take(5) |
                           ranges::views::transform([](int x) { return x + 1; }) |
                           ranges::to<std::vector>();
    BOOST_TEST(got == (std::vector<int>{1, 2, 5, 10, 17}));
}

BOOST_AUTO_TEST_CASE(imap_with_chunksize_zero_throws_value_error_at_the_call, *utf::timeout(60)) {
    ThreadPool pool(2);
    BOOST_CHECK_EXCEPTION(pool.imap(sqr, std::vector<int>{1}, 0), pypool::ValueError,
                          [](const pypool::ValueError& e) {
                              return std::string(e.what()) == "Chunksize must be 1+, not 0";
                          });
    BOOST_CHECK_THROW(pool.imap(sqr, {1}, pypool::IMapOptions{.chunksize = 0}), pypool::ValueError);
}

BOOST_AUTO_TEST_CASE(imap_reads_ahead_exactly_max_in_flight_chunks, *utf::timeout(60)) {
    ThreadPool pool(2);
    for (std::size_t cs : {1, 3}) {
        auto stats = std::make_shared<bulk_test::ReadStats>();
        const std::size_t mif = 4;
        auto it = pool.imap([](long x) { return x; }, bulk_test::InstrumentedRange(stats),
                            pypool::IMapOptions{.chunksize = cs, .max_in_flight = mif});
        BOOST_TEST(stats->read.load() == static_cast<long>(mif * cs));
        for (long i = 0; i < 200; ++i) {
            BOOST_TEST(*it.next() == i);
            const long consumed_chunks = (i + 1) / static_cast<long>(cs);
            // a chunk is refilled as soon as its last item was yielded
            BOOST_TEST(stats->read.load() == (consumed_chunks + static_cast<long>(mif)) * static_cast<long>(cs));
        }
        BOOST_TEST(!stats->overlap.load());
    }
}

BOOST_AUTO_TEST_CASE(imap_default_max_in_flight_stays_between_32_and_64_times_size_refilled_in_batches,
                     *utf::timeout(60)) {
    ThreadPool pool(3);
    auto stats = std::make_shared<bulk_test::ReadStats>();
    auto it = pool.imap([](long x) { return x; }, bulk_test::InstrumentedRange(stats));
    BOOST_TEST(stats->read.load() == 192);  // 64 * size() chunks of one item
    for (long i = 0; i < 1000; ++i) {
        BOOST_TEST(*it.next() == i);
        const long in_flight = stats->read.load() - (i + 1);
        BOOST_TEST(in_flight >= 96);  // 32 * size(): half the window is read at once
        BOOST_TEST(in_flight <= 192);
    }
    BOOST_TEST(stats->read.load() > 1000);
    BOOST_TEST(!stats->overlap.load());
}

BOOST_AUTO_TEST_CASE(imap_with_an_explicit_window_submits_each_chunk_before_reading_the_next,
                     *utf::timeout(60)) {
    // An input that waits for what the earlier items produce (a crawler's frontier): reading
    // item k waits until item k - 1 has run. With a max_in_flight the user chose, each chunk
    // is submitted as soon as it is read, so this finishes (with the default window the
    // consumer reads a batch before submitting it; docs/PORTING.md).
    struct Progress {
        std::mutex m;
        std::condition_variable cv;
        int ran = 0;
    };
    auto p = std::make_shared<Progress>();
    auto input = ranges::views::iota(0, 40) | ranges::views::transform([p](int k) {
                     std::unique_lock lk(p->m);
                     if (!p->cv.wait_for(lk, std::chrono::seconds(10), [&] { return p->ran >= k; }))
                         throw std::runtime_error("input starved: item " + std::to_string(k - 1) +
                                                  " was never submitted");
                     return k;
                 });
    ThreadPool pool(2);
    for (std::size_t mif : {std::size_t{1}, std::size_t{4}}) {
        p->ran = 0;
        auto it = pool.imap([p](int k) {
            {
                std::lock_guard lk(p->m);
                ++p->ran;
            }
            p->cv.notify_all();
            return k;
        }, input, pypool::IMapOptions{.max_in_flight = mif});
        for (int i = 0; i < 40; ++i) BOOST_TEST(*it.next() == i);
        BOOST_TEST(!it.next());
    }
}

BOOST_AUTO_TEST_CASE(imap_with_an_unbounded_window_reads_only_what_the_input_holds,
                     *utf::timeout(60)) {
    ThreadPool pool(2);
    auto it = pool.imap(sqr, std::vector<int>{1, 2, 3},
                        pypool::IMapOptions{.max_in_flight = std::numeric_limits<std::size_t>::max()});
    BOOST_TEST(*it.next() == 1);
    BOOST_TEST(*it.next() == 4);
    BOOST_TEST(*it.next() == 9);
    BOOST_TEST(!it.next());
}

BOOST_AUTO_TEST_CASE(imap_failing_item_throws_at_its_position_and_iteration_continues,
                     *utf::timeout(60)) {
    ThreadPool pool(2);
    auto f = [](int x) { if (x == 4 || x == 5) throw std::runtime_error(std::to_string(x)); return x; };
    auto it = pool.imap(f, ranges::views::iota(0, 10), 3);  // 4 and 5 inside chunk [3, 6)
    for (int i = 0; i < 10; ++i) {
        if (i == 4 || i == 5) {
            BOOST_CHECK_EXCEPTION(it.next(), std::runtime_error, [&](const std::runtime_error& e) {
                return std::string(e.what()) == std::to_string(i);
            });
        } else {
            BOOST_TEST(*it.next() == i);
        }
    }
    BOOST_TEST(!it.next());
}

BOOST_AUTO_TEST_CASE(imap_delivers_exceptions_not_derived_from_std_exception, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto it = pool.imap([](int x) { if (x == 1) throw 7; return x; }, {0, 1, 2});
    BOOST_TEST(*it.next() == 0);
    BOOST_CHECK_THROW(it.next(), int);
    BOOST_TEST(*it.next() == 2);
}

BOOST_AUTO_TEST_CASE(imap_input_that_throws_yields_earlier_results_then_the_error_then_end,
                     *utf::timeout(60)) {
    ThreadPool pool(2);
    for (std::size_t cs : {1, 2, 4}) {
        auto it = pool.imap(sqr, bulk_test::ThrowingRange(20, 7), cs);
        for (int i = 0; i < 7; ++i) BOOST_TEST(*it.next() == i * i);
        BOOST_CHECK_THROW(it.next(), bulk_test::SayWhenError);
        BOOST_TEST(!it.next());
    }
    auto first = pool.imap(sqr, bulk_test::ThrowingRange(1, -1));  // throws on the first read
    BOOST_CHECK_THROW(first.next(), bulk_test::SayWhenError);
    BOOST_TEST(!first.next());
}

BOOST_AUTO_TEST_CASE(imap_next_with_timeout_throws_timeout_error, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::latch gate(1);
    auto it = pool.imap([&](int x) { gate.wait(); return x; }, {5});
    BOOST_CHECK_THROW(it.next(10ms), pypool::TimeoutError);
    BOOST_CHECK_THROW(it.next(0ms), pypool::TimeoutError);
    gate.count_down();
    BOOST_TEST(*it.next(60s) == 5);
    BOOST_TEST(!it.next(0ms));
}

BOOST_AUTO_TEST_CASE(imap_of_a_void_function_yields_none, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::atomic<int> calls{0};
    int n = 0;
    for (pypool::None x : pool.imap([&](int) { ++calls; }, {1, 2, 3})) {
        BOOST_TEST((x == pypool::None{}));
        ++n;
    }
    BOOST_TEST(n == 3);
    BOOST_TEST(calls.load() == 3);
}

BOOST_AUTO_TEST_CASE(imap_with_move_only_results_and_inputs, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<std::unique_ptr<int>> in;
    for (int i = 0; i < 10; ++i) in.push_back(std::make_unique<int>(i));
    auto it = pool.imap([](std::unique_ptr<int> p) { return p; }, std::move(in), 3);
    int i = 0;
    for (auto& p : it) BOOST_TEST(*p == i++);
    BOOST_TEST(i == 10);
    auto it2 = pool.imap([](int x) { return std::make_unique<int>(x); }, {1});
    std::optional<std::unique_ptr<int>> one = it2.next();
    BOOST_TEST(**one == 1);
}

BOOST_AUTO_TEST_CASE(imap_iterator_can_be_moved, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto a = pool.imap(sqr, ranges::views::iota(0, 5));
    BOOST_TEST(*a.next() == 0);
    pypool::IMapIterator<int> b = std::move(a);
    BOOST_TEST(!a.next());
    BOOST_TEST(drain(b) == (std::vector<int>{1, 4, 9, 16}));
    pypool::IMapIterator<int> c;
    BOOST_TEST(!c.next());
    c = pool.imap(sqr, ranges::views::iota(0));
    BOOST_TEST(*c.next() == 0);
    c = pool.imap(sqr, {3});  // destroys the endless one
    BOOST_TEST(*c.next() == 9);
}

BOOST_AUTO_TEST_CASE(imap_early_destruction_cancels_queued_chunks_and_waits_for_running,
                     *utf::timeout(60)) {
    ThreadPool pool(2);
    std::atomic<long> calls{0};
    std::atomic<int> running{0};
    {
        auto it = pool.imap([&](int x) {
            ++running;
            ++calls;
            std::this_thread::sleep_for(1ms);  // makes chunks last; order does not depend on it
            --running;
            return x;
        }, ranges::views::iota(0), pypool::IMapOptions{.chunksize = 2, .max_in_flight = 8});
        int n = 0;
        for (int x : it | ranges::views::take(5)) n += x >= 0;
        BOOST_TEST(n == 5);
    }
    BOOST_TEST(running.load() == 0);  // waited for the running chunks
    const long after = calls.load();
    BOOST_TEST(after <= (3 + 8) * 2);
    pool.close();
    pool.join();  // the cancelled chunks left the queue without running
    BOOST_TEST(calls.load() == after);
    BOOST_TEST(pool.stats().queued == 0U);
}

BOOST_AUTO_TEST_CASE(imap_close_lets_the_iterator_go_on_reading, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto it = pool.imap(sqr, ranges::views::iota(0, 100), pypool::IMapOptions{.max_in_flight = 2});
    BOOST_TEST(*it.next() == 0);
    pool.close();
    std::vector<int> got{0};
    while (auto x = it.next()) got.push_back(*x);
    BOOST_TEST(got == squares(100));
    BOOST_CHECK_THROW(pool.imap(sqr, {1}), pypool::ValueError);
    pool.join();
}

BOOST_AUTO_TEST_CASE(imap_close_join_then_iterate_gets_everything, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto stats = std::make_shared<bulk_test::ReadStats>();
    auto it = pool.imap([](long x) { return x * 2; }, bulk_test::InstrumentedRange(stats, 100),
                        pypool::IMapOptions{.chunksize = 3, .max_in_flight = 2});
    pool.close();
    pool.join();  // reads the rest of the input itself and runs it
    BOOST_TEST(stats->read.load() == 100);
    long i = 0;
    for (long x : it) BOOST_TEST(x == 2 * i++);
    BOOST_TEST(i == 100);
    BOOST_TEST(!stats->overlap.load());
}

BOOST_AUTO_TEST_CASE(imap_close_join_delivers_input_errors_at_their_position, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto it = pool.imap(sqr, bulk_test::ThrowingRange(50, 23), pypool::IMapOptions{.max_in_flight = 1});
    pool.close();
    pool.join();
    for (int i = 0; i < 23; ++i) BOOST_TEST(*it.next() == i * i);
    BOOST_CHECK_THROW(it.next(), bulk_test::SayWhenError);
    BOOST_TEST(!it.next());
}

BOOST_AUTO_TEST_CASE(imap_terminate_yields_computed_then_cancelled_error_once, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto it = pool.imap(sqr, ranges::views::iota(0), pypool::IMapOptions{.max_in_flight = 3});
    for (int i = 0; i < 3; ++i) BOOST_TEST(*it.next() == i * i);
    pool.terminate();
    pool.join();  // does not wait for the live iterator
    int expect = 3;
    bool cancelled = false;
    for (;;) {
        try {
            auto x = it.next();
            if (!x) break;
            BOOST_TEST(!cancelled);
            BOOST_TEST(*x == expect * expect);
            ++expect;
        } catch (const pypool::CancelledError&) {
            BOOST_TEST(!cancelled);  // once
            cancelled = true;
        }
    }
    BOOST_TEST(cancelled);  // the endless input was left unread
    BOOST_TEST(!it.next());
}

BOOST_AUTO_TEST_CASE(imap_terminate_wakes_a_waiting_consumer, *utf::timeout(60)) {
    ThreadPool pool(1);
    std::latch started(1), gate(1);
    auto blocker = pool.apply_async([&] { started.count_down(); gate.wait(); });
    started.wait();
    auto it = pool.imap(sqr, ranges::views::iota(0, 10));  // all queued behind the blocker
    std::thread t([&] { pool.terminate(); });
    BOOST_CHECK_THROW(it.next(), pypool::CancelledError);
    BOOST_TEST(!it.next());
    t.join();
    gate.count_down();
    pool.join();
}

BOOST_AUTO_TEST_CASE(imap_destroyed_while_join_drains_it, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto stats = std::make_shared<bulk_test::ReadStats>();
    std::optional<pypool::IMapIterator<long>> it;
    it.emplace(pool.imap([](long x) { return x; }, bulk_test::InstrumentedRange(stats),
                         pypool::IMapOptions{.chunksize = 4, .max_in_flight = 2}));
    pool.close();
    std::thread joiner([&] { pool.join(); });  // drains the endless input until abandoned
    while (stats->read.load() < 1000) std::this_thread::yield();
    it.reset();
    joiner.join();
    BOOST_TEST(!stats->overlap.load());
}

BOOST_AUTO_TEST_CASE(imap_on_a_worker_waits_by_running_queued_chunks, *utf::timeout(60)) {
    ThreadPool pool(1);
    auto sum = pool.apply([&] {
        int s = 0;
        for (int x : pool.imap(sqr, ranges::views::iota(0, 20))) s += x;
        return s;
    });
    BOOST_TEST(sum == 2470);
}

BOOST_AUTO_TEST_CASE(imap_may_be_consumed_on_the_callback_thread, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::vector<int> got;
    auto r = pool.apply_async([] { return 0; }, std::tuple{}, {.callback = [&](const int&) {
        for (int x : pool.imap(sqr, ranges::views::iota(0, 10))) got.push_back(x);
    }});
    r.get();
    BOOST_TEST(got == squares(10));
}

BOOST_AUTO_TEST_CASE(imap_from_inside_the_pool_after_close_is_accepted, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::latch gate(1);
    auto r = pool.apply_async([&] {
        gate.wait();
        std::vector<int> got;
        for (int x : pool.imap(sqr, ranges::views::iota(0, 10), pypool::IMapOptions{.max_in_flight = 1}))
            got.push_back(x);
        return got;
    });
    pool.close();
    gate.count_down();
    BOOST_TEST(r.get() == squares(10));
    pool.join();
}

BOOST_AUTO_TEST_CASE(imap_started_by_a_callback_during_join_is_drained, *utf::timeout(60)) {
    ThreadPool pool(2);
    std::latch gate(1);
    std::optional<pypool::IMapIterator<int>> it;
    auto r = pool.apply_async([&] { gate.wait(); return 0; }, std::tuple{}, {.callback = [&](const int&) {
        it.emplace(pool.imap(sqr, ranges::views::iota(0, 50), pypool::IMapOptions{.max_in_flight = 1}));
    }});
    pool.close();
    std::thread joiner([&] { pool.join(); });
    gate.count_down();
    joiner.join();  // join() read the input of the stream the callback started
    BOOST_REQUIRE(it.has_value());
    BOOST_TEST(drain(*it) == squares(50));
}

BOOST_AUTO_TEST_CASE(imap_iterator_outlives_its_pool, *utf::timeout(60)) {
    std::optional<pypool::IMapIterator<int>> it;
    {
        ThreadPool pool(2);
        it.emplace(pool.imap(sqr, ranges::views::iota(0, 30), pypool::IMapOptions{.max_in_flight = 1}));
    }  // the destructor closes and joins: the rest of the input is read and run
    BOOST_TEST(drain(*it) == squares(30));
    std::optional<pypool::IMapIterator<int>> endless;
    {
        ThreadPool pool(2);
        endless.emplace(pool.imap(sqr, ranges::views::iota(0)));
        pool.terminate();
    }
    int n = 0;
    BOOST_CHECK_THROW(while (endless->next()) ++n, pypool::CancelledError);
    BOOST_TEST(!endless->next());
}

BOOST_AUTO_TEST_CASE(imap_allocates_per_in_flight_chunk_not_per_item, *utf::timeout(60)) {
    ThreadPool pool(2);
    const long before = g_allocs.load();
    long n = 0;
    for (int x : pool.imap(sqr, ranges::views::iota(0, 20000),
                           pypool::IMapOptions{.chunksize = 2, .max_in_flight = 4}))
        n += x >= 0;
    BOOST_TEST(n == 20000);
    BOOST_TEST(g_allocs.load() - before < 60);  // consumed chunks are reused
}

BOOST_AUTO_TEST_CASE(imap_with_a_huge_chunksize_yields_the_items, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto huge = pool.imap(sqr, std::vector{1, 2, 3}, std::size_t{1} << 40);
    BOOST_TEST(drain(huge) == (std::vector{1, 4, 9}));
    auto it = pool.imap(sqr, std::vector{4, 5}, pypool::IMapOptions{.chunksize = SIZE_MAX});
    BOOST_TEST(drain(it) == (std::vector{16, 25}));
}

BOOST_AUTO_TEST_CASE(imap_memory_follows_the_items_read_not_the_chunksize, *utf::timeout(60)) {
    ThreadPool pool(2);
    g_largest.store(0);
    auto it = pool.imap(sqr, std::vector{1, 2, 3}, 5'000'000);
    BOOST_TEST(drain(it) == (std::vector{1, 4, 9}));
    BOOST_TEST(g_largest.load() < 64 * 1024u);  // no chunksize-sized block (120 MB here)
}

BOOST_AUTO_TEST_CASE(imap_consumer_and_join_never_read_the_input_at_once, *utf::timeout(60)) {
    ThreadPool pool(2);
    auto stats = std::make_shared<bulk_test::ReadStats>();
    auto it = pool.imap([](long x) { return x; }, bulk_test::InstrumentedRange(stats, 5000),
                        pypool::IMapOptions{.chunksize = 1, .max_in_flight = 2});
    pool.close();
    std::thread joiner([&] { pool.join(); });  // reads the rest while we consume
    long i = 0;
    bool in_order = true;
    while (auto x = it.next()) in_order = in_order && *x == i++;
    joiner.join();
    BOOST_TEST(in_order);
    BOOST_TEST(i == 5000);
    BOOST_TEST(!stats->overlap.load());
}

BOOST_AUTO_TEST_CASE(imap_shutdown_cancel_futures_yields_computed_then_cancelled_once,
                     *utf::timeout(60)) {
    ThreadPool pool(1);
    std::latch started(1), gate(1);
    auto it = pool.imap([&](int x) {
        if (x == 1) { started.count_down(); gate.wait(); }
        return x;
    }, ranges::views::iota(0, 100), pypool::IMapOptions{.max_in_flight = 4});
    started.wait();                 // item 1 runs; 2 and 3 are queued
    pool.shutdown(false, true);     // cancels 2 and 3; the iterator stops reading
    gate.count_down();
    BOOST_TEST(*it.next() == 0);
    BOOST_TEST(*it.next() == 1);
    BOOST_CHECK_THROW(it.next(), pypool::CancelledError);
    BOOST_TEST(!it.next());
    pool.join();
}
