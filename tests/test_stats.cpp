// PoolStats counters at quiescent points.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include <pypool/pypool.hpp>

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using pypool::AsyncResult;

namespace {

// Spins (yielding) until cond() holds; fails after a generous bound. Observes a state the
// library reaches by itself.
template <class Cond>
void spin_until(Cond cond) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) BOOST_FAIL("condition not reached");
        std::this_thread::yield();
    }
}

// Occupies all n workers until release().
class Occupier {
public:
    Occupier(pypool::ThreadPool& pool, std::ptrdiff_t n) : started_(n) {
        for (std::ptrdiff_t i = 0; i < n; ++i) {
            rs_.push_back(pool.apply_async([this] {
                started_.count_down();
                release_.wait();
            }));
        }
        started_.wait();
    }
    void release() { release_.count_down(); }
    ~Occupier() { release_.count_down(); }
    Occupier(const Occupier&) = delete;
    Occupier& operator=(const Occupier&) = delete;

private:
    std::latch started_;
    std::latch release_{1};
    std::vector<AsyncResult<void>> rs_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(fresh_pool_counts_nothing, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    const auto s = pool.stats();
    BOOST_TEST(s.submitted == 0U);
    BOOST_TEST(s.completed == 0U);
    BOOST_TEST(s.failed == 0U);
    BOOST_TEST(s.cancelled == 0U);
    BOOST_TEST(s.queued == 0U);
    BOOST_TEST(s.running == 0U);
    BOOST_TEST(s.callbacks_pending == 0U);
}

BOOST_AUTO_TEST_CASE(queued_and_running_are_exact_while_workers_are_blocked, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Occupier busy(pool, 2);
    std::vector<AsyncResult<int>> queued;
    for (int i = 0; i < 3; ++i) queued.push_back(pool.apply_async([i] { return i; }));
    auto s = pool.stats();
    BOOST_TEST(s.submitted == 5U);
    BOOST_TEST(s.running == 2U);
    BOOST_TEST(s.queued == 3U);
    BOOST_TEST(s.completed == 0U);
    busy.release();
    pool.close();
    pool.join();
    s = pool.stats();
    BOOST_TEST(s.submitted == 5U);
    BOOST_TEST(s.completed == 5U);
    BOOST_TEST(s.failed == 0U);
    BOOST_TEST(s.cancelled == 0U);
    BOOST_TEST(s.queued == 0U);
    BOOST_TEST(s.running == 0U);
    BOOST_TEST(s.callbacks_pending == 0U);
}

BOOST_AUTO_TEST_CASE(cancel_moves_a_task_from_queued_to_cancelled, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Occupier busy(pool, 1);
    auto a = pool.apply_async([] {});
    auto b = pool.apply_async([] {});
    BOOST_TEST(a.cancel());
    BOOST_TEST(a.cancel());  // counted once
    auto s = pool.stats();
    BOOST_TEST(s.queued == 1U);
    BOOST_TEST(s.cancelled == 1U);
    BOOST_TEST(s.running == 1U);
    busy.release();
    pool.close();
    pool.join();
    s = pool.stats();
    BOOST_TEST(s.submitted == 3U);
    BOOST_TEST(s.completed == 2U);
    BOOST_TEST(s.cancelled == 1U);
    BOOST_TEST(s.failed == 0U);
    BOOST_TEST(s.queued == 0U);
}

BOOST_AUTO_TEST_CASE(failed_counts_tasks_that_threw, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    for (int i = 0; i < 10; ++i) {
        pool.apply_async([i] {
            if (i % 3 == 0) throw std::runtime_error("x");
            return i;
        });
    }
    pool.close();
    pool.join();
    const auto s = pool.stats();
    BOOST_TEST(s.submitted == 10U);
    BOOST_TEST(s.failed == 4U);  // 0, 3, 6, 9
    BOOST_TEST(s.completed == 6U);
}

BOOST_AUTO_TEST_CASE(throwing_callback_counts_as_failed, *utf::timeout(60)) {
    pypool::ThreadPool pool(
        pypool::PoolOptions{.processes = 1, .on_callback_error = [](std::exception_ptr) {}});
    pool.apply_async([] { return 1; }, std::tuple{},
                     {.callback = [](const int&) { throw std::runtime_error("cb"); }});
    pool.apply_async([]() -> int { throw 1; }, std::tuple{},
                     {.error_callback = [](std::exception_ptr) { throw 2; }});
    pool.apply_async([] { return 1; }, std::tuple{}, {.callback = [](const int&) {}});
    pool.close();
    pool.join();
    const auto s = pool.stats();
    BOOST_TEST(s.submitted == 3U);
    BOOST_TEST(s.failed == 2U);
    BOOST_TEST(s.completed == 1U);
    BOOST_TEST(s.callbacks_pending == 0U);
}

BOOST_AUTO_TEST_CASE(terminate_counts_queued_tasks_as_cancelled, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Occupier busy(pool, 2);
    for (int i = 0; i < 4; ++i) pool.apply_async([] {});
    pool.apply_async([] {}, std::tuple{}, {.error_callback = [](std::exception_ptr) {}});
    pool.terminate();
    auto s = pool.stats();
    BOOST_TEST(s.queued == 0U);
    BOOST_TEST(s.cancelled == 5U);
    BOOST_TEST(s.running == 2U);
    busy.release();
    pool.join();
    s = pool.stats();
    BOOST_TEST(s.submitted == 7U);
    BOOST_TEST(s.completed == 2U);
    BOOST_TEST(s.cancelled == 5U);
    BOOST_TEST(s.failed == 0U);
    BOOST_TEST(s.running == 0U);
    BOOST_TEST(s.callbacks_pending == 0U);
}

BOOST_AUTO_TEST_CASE(callbacks_pending_counts_handlers_on_the_callback_thread,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::latch callback_started(1), callback_release(1);
    auto holder = pool.apply_async([] {}, std::tuple{}, {.callback = [&] {
                                       callback_started.count_down();
                                       callback_release.wait();
                                   }});
    callback_started.wait();
    BOOST_TEST(pool.stats().callbacks_pending == 1U);
    auto second = pool.apply_async([] { return 1; }, std::tuple{}, {.callback = [](const int&) {}});
    spin_until([&] { return pool.stats().callbacks_pending == 2U; });
    BOOST_TEST(!second.ready());
    callback_release.count_down();
    second.wait();
    pool.close();
    pool.join();
    const auto s = pool.stats();
    BOOST_TEST(s.callbacks_pending == 0U);
    BOOST_TEST(s.completed == 2U);
}

BOOST_AUTO_TEST_CASE(counters_after_get_include_the_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.apply_async([] { return 1; }).get();
    auto s = pool.stats();
    BOOST_TEST(s.submitted == 1U);
    BOOST_TEST(s.completed == 1U);
    BOOST_TEST(s.running == 0U);
    BOOST_TEST(s.queued == 0U);
    BOOST_CHECK_THROW(pool.apply([]() -> int { throw 1; }), int);
    s = pool.stats();
    BOOST_TEST(s.failed == 1U);
    BOOST_TEST(s.running == 0U);
}

BOOST_AUTO_TEST_CASE(counters_balance_after_many_mixed_tasks, *utf::timeout(60)) {
    pypool::ThreadPool pool(3);
    constexpr int n = 600;
    std::vector<AsyncResult<int>> rs;
    for (int i = 0; i < n; ++i) {
        pypool::Callbacks<int> cb;
        if (i % 2 == 0) cb.callback = [](const int&) {};
        if (i % 4 == 1) cb.error_callback = [](std::exception_ptr) {};
        rs.push_back(pool.apply_async(
            [i] {
                if (i % 5 == 0) throw std::runtime_error("x");
                return i;
            },
            std::tuple{}, std::move(cb)));
    }
    for (int i = 0; i < n; i += 7) rs[static_cast<std::size_t>(i)].cancel();
    pool.close();
    pool.join();
    const auto s = pool.stats();
    std::size_t ok = 0, bad = 0, cancelled = 0;
    for (auto& r : rs) {
        if (r.cancelled())
            ++cancelled;
        else if (r.successful())
            ++ok;
        else
            ++bad;
    }
    BOOST_TEST(s.submitted == static_cast<std::size_t>(n));
    BOOST_TEST(s.completed == ok);
    BOOST_TEST(s.failed == bad);
    BOOST_TEST(s.cancelled == cancelled);
    BOOST_TEST(s.completed + s.failed + s.cancelled == s.submitted);
    BOOST_TEST(s.queued == 0U);
    BOOST_TEST(s.running == 0U);
    BOOST_TEST(s.callbacks_pending == 0U);
}

// Issue 11 item 9: at rest stats() is what is there. Cancelled work leaves `queued` at
// once, not when a worker reaches its nodes.
BOOST_AUTO_TEST_CASE(an_abandoned_imap_leaves_queued_at_once, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Occupier busy(pool, 1);  // the chunks stay queued behind it
    {
        auto it = pool.imap([](int x) { return x; }, std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8});
        BOOST_TEST(pool.stats().queued > 0U);
    }  // destroyed early: its queued chunks are cancelled
    const auto s = pool.stats();
    BOOST_TEST(s.queued == 0U);
    BOOST_TEST(s.running == 1U);
    busy.release();
    pool.close();
    pool.join();
    const auto e = pool.stats();
    BOOST_TEST(e.queued == 0U);
    BOOST_TEST(e.completed + e.failed + e.cancelled == e.submitted);
}

BOOST_AUTO_TEST_CASE(a_cancelled_map_leaves_queued_at_once, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Occupier busy(pool, 1);
    auto m = pool.map_async([](int x) { return x; }, std::vector<int>{1, 2, 3, 4}, {.chunksize = 1});
    BOOST_TEST(pool.stats().queued == 4U);
    BOOST_TEST(m.cancel());
    const auto s = pool.stats();
    BOOST_TEST(s.queued == 0U);
    BOOST_TEST(s.cancelled == 4U);  // one per chunk, as terminate() counts them
    busy.release();
    pool.close();
    pool.join();
    const auto e = pool.stats();
    BOOST_TEST(e.queued == 0U);
    BOOST_TEST(e.cancelled == 4U);
    BOOST_TEST(e.completed + e.failed + e.cancelled == e.submitted);
}

// Completions waiting for the callback thread behind a running callback count as pending:
// a task's, a map's and a cancellation's with an error_callback.
BOOST_AUTO_TEST_CASE(completions_queued_behind_a_running_callback_count_as_pending,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::latch callback_started(1), callback_release(1);
    auto holder = pool.apply_async([] {}, std::tuple{}, {.callback = [&] {
                                       callback_started.count_down();
                                       callback_release.wait();
                                   }});
    callback_started.wait();
    std::latch gate(1);
    auto k = pool.apply_async([&] { gate.wait(); });
    auto c = pool.apply_async([] {}, std::tuple{}, {.error_callback = [](std::exception_ptr) {}});
    auto b = pool.apply_async([] { return 1; }, std::tuple{}, {.callback = [](const int&) {}});
    auto m = pool.map_async([](int x) { return x; }, std::vector<int>{1},
                            {.callback = [](const std::vector<int>&) {}});
    BOOST_TEST(c.cancel());
    gate.count_down();
    pool.apply_async([] {}).get();  // after b and m finished on the one worker
    BOOST_TEST(pool.stats().callbacks_pending == 4U);  // holder's, c's, b's, m's
    callback_release.count_down();
    pool.close();
    pool.join();
    BOOST_TEST(pool.stats().callbacks_pending == 0U);
}
