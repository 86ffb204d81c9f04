// pypool::wait: FirstCompleted, FirstException, AllCompleted, timeouts, cancelled results,
// distinct results, empty handles, the callback thread and waiting workers.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <list>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include <pypool/pypool.hpp>

#include "test_gate.hpp"

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using pypool::AsyncResult;
using pypool::ReturnWhen;

namespace {


template <class T>
bool contains(const std::vector<AsyncResult<T>>& v, const AsyncResult<T>& r) {
    return std::find(v.begin(), v.end(), r) != v.end();
}

int blocked(std::shared_future<void> f) {
    f.wait();
    return 1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(all_completed_waits_for_every_result, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::vector<AsyncResult<int>> fs;
    for (int i = 0; i < 20; ++i)
        fs.push_back(pool.submit([](int x) {
            std::this_thread::sleep_for(1ms);
            return x;
        }, i));
    auto r = pypool::wait(fs);
    BOOST_TEST(r.done.size() == 20U);
    BOOST_TEST(r.not_done.empty());
    for (auto& f : fs) BOOST_TEST(f.done());
}

BOOST_AUTO_TEST_CASE(each_distinct_result_is_listed_once, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    auto f = pool.submit([](int a, int b) { return a * b; }, 1, 2);
    auto r = pypool::wait({f, f, f}, ReturnWhen::AllCompleted);
    BOOST_TEST(r.done.size() == 1U);
    BOOST_TEST((r.done[0] == f));
    BOOST_TEST(r.not_done.empty());
}

BOOST_AUTO_TEST_CASE(first_completed_returns_when_one_finishes, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    auto slow = pool.submit(blocked, gate.future());
    std::promise<void> go;
    auto quick = pool.submit([g = go.get_future().share()] {
        g.wait();
        return 42;
    });
    std::thread t([&] {
        std::this_thread::sleep_for(5ms);  // let the wait block first (order does not matter)
        go.set_value();
    });
    auto r = pypool::wait({slow, quick}, ReturnWhen::FirstCompleted);
    t.join();
    BOOST_TEST(r.done.size() == 1U);
    BOOST_TEST((r.done[0] == quick));
    BOOST_TEST(r.not_done.size() == 1U);
    BOOST_TEST((r.not_done[0] == slow));
}

BOOST_AUTO_TEST_CASE(first_completed_returns_at_once_when_one_is_done, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    auto done = pool.submit([] { return 1; });
    done.wait();
    auto slow = pool.submit(blocked, gate.future());
    auto r = pypool::wait({done, slow}, ReturnWhen::FirstCompleted);
    BOOST_TEST(r.done.size() == 1U);
    BOOST_TEST(r.not_done.size() == 1U);
    BOOST_TEST((r.not_done[0] == slow));
}

BOOST_AUTO_TEST_CASE(first_exception_returns_when_one_fails, *utf::timeout(60)) {
    pypool::ThreadPool pool(3);
    Gate gate;
    std::promise<void> fail_now;
    auto ok = pool.submit([](int a, int b) { return a * b; }, 2, 21);
    auto bad = pool.submit([g = fail_now.get_future().share()]() -> int {
        g.wait();
        throw std::runtime_error("this is an exception");
    });
    auto slow = pool.submit(blocked, gate.future());
    std::thread t([&] {
        ok.wait();  // ok finishes before bad fails
        fail_now.set_value();
    });
    auto r = pypool::wait({ok, bad, slow}, ReturnWhen::FirstException);
    t.join();
    BOOST_TEST(r.done.size() == 2U);
    BOOST_TEST(contains(r.done, ok));
    BOOST_TEST(contains(r.done, bad));
    BOOST_TEST(r.not_done.size() == 1U);
    BOOST_TEST((r.not_done[0] == slow));
}

BOOST_AUTO_TEST_CASE(first_exception_returns_at_once_when_one_already_failed, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    auto bad = pool.submit([]() -> int { throw std::runtime_error("x"); });
    bad.wait();
    auto slow = pool.submit(blocked, gate.future());
    auto r = pypool::wait({bad, slow}, ReturnWhen::FirstException);
    BOOST_TEST(r.done.size() == 1U);
    BOOST_TEST((r.done[0] == bad));
    BOOST_TEST((r.not_done[0] == slow));
}

BOOST_AUTO_TEST_CASE(first_exception_waits_for_all_when_nothing_fails, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::vector<AsyncResult<int>> fs;
    for (int i = 0; i < 10; ++i)
        fs.push_back(pool.submit([](int x) {
            std::this_thread::sleep_for(1ms);
            return x;
        }, i));
    auto r = pypool::wait(fs, ReturnWhen::FirstException);
    BOOST_TEST(r.done.size() == 10U);
    BOOST_TEST(r.not_done.empty());
}

BOOST_AUTO_TEST_CASE(first_exception_does_not_count_a_cancelled_result_as_failed,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    auto running = pool.submit(blocked, gate.future());
    auto queued = pool.submit([] { return 2; });
    BOOST_TEST(queued.cancel());
    std::thread t([&] {
        std::this_thread::sleep_for(5ms);
        gate.open();
    });
    auto r = pypool::wait({running, queued}, ReturnWhen::FirstException);
    t.join();
    BOOST_TEST(r.done.size() == 2U);  // it waited for `running` as well
    BOOST_TEST(running.result() == 1);
}

BOOST_AUTO_TEST_CASE(timeout_returns_unfinished_results_as_not_done, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    auto done = pool.submit([] { return 1; });
    done.wait();
    auto slow = pool.submit(blocked, gate.future());
    auto r = pypool::wait({done, slow}, 50ms);
    BOOST_TEST(r.done.size() == 1U);
    BOOST_TEST((r.done[0] == done));
    BOOST_TEST(r.not_done.size() == 1U);
    BOOST_TEST((r.not_done[0] == slow));
}

BOOST_AUTO_TEST_CASE(zero_timeout_only_checks, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    auto slow = pool.submit(blocked, gate.future());
    auto r = pypool::wait({slow}, 0s, ReturnWhen::FirstCompleted);
    BOOST_TEST(r.done.empty());
    BOOST_TEST(r.not_done.size() == 1U);
    auto r2 = pypool::wait({slow}, -1s);
    BOOST_TEST(r2.not_done.size() == 1U);
}

BOOST_AUTO_TEST_CASE(empty_input_returns_at_once, *utf::timeout(60)) {
    std::vector<AsyncResult<int>> none;
    for (auto when : {ReturnWhen::FirstCompleted, ReturnWhen::FirstException,
                      ReturnWhen::AllCompleted}) {
        auto r = pypool::wait(none, when);
        BOOST_TEST(r.done.empty());
        BOOST_TEST(r.not_done.empty());
    }
}

BOOST_AUTO_TEST_CASE(empty_handle_throws_value_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto f = pool.submit([] { return 1; });
    std::vector<AsyncResult<int>> fs{f, AsyncResult<int>{}};
    try {
        (void)pypool::wait(fs);
        BOOST_FAIL("no ValueError");
    } catch (const pypool::ValueError& e) {
        BOOST_TEST(std::string(e.what()) == "AsyncResult has no state");
    }
    BOOST_CHECK_THROW((void)pypool::wait({AsyncResult<int>{}}, 1s), pypool::ValueError);
}

BOOST_AUTO_TEST_CASE(cancelling_a_queued_result_wakes_a_first_completed_wait, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    auto running = pool.submit(blocked, gate.future());
    auto queued = pool.submit([] { return 2; });
    std::thread t([&] {
        std::this_thread::sleep_for(5ms);  // order does not matter: cancel is seen either way
        queued.cancel();
    });
    auto r = pypool::wait({running, queued}, ReturnWhen::FirstCompleted);
    t.join();
    BOOST_TEST(r.done.size() == 1U);
    BOOST_TEST((r.done[0] == queued));
    BOOST_TEST(queued.cancelled());
}

BOOST_AUTO_TEST_CASE(results_that_complete_through_the_callback_thread_wake_the_wait,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::atomic<int> calls{0};
    std::vector<AsyncResult<int>> fs;
    for (int i = 0; i < 10; ++i) {
        fs.push_back(pool.apply_async([](int x) { return x; }, std::tuple{i},
                                      {.callback = [&](const int&) { ++calls; }}));
        fs.push_back(pool.apply_async([]() -> int { throw std::runtime_error("e"); }, std::tuple{},
                                      {.error_callback = [&](std::exception_ptr) { ++calls; }}));
    }
    auto r = pypool::wait(fs);
    BOOST_TEST(r.done.size() == 20U);
    BOOST_TEST(calls.load() == 20);  // ready only after the callback returned
}

BOOST_AUTO_TEST_CASE(waits_on_results_of_several_pools, *utf::timeout(60)) {
    pypool::ThreadPool a(1), b(1);
    Gate gate;
    auto fa = a.submit(blocked, gate.future());
    auto fb = b.submit([] { return 2; });
    auto r = pypool::wait({fa, fb}, ReturnWhen::FirstCompleted);
    BOOST_TEST((r.done.at(0) == fb));
    gate.open();
    auto r2 = pypool::wait({fa, fb});
    BOOST_TEST(r2.done.size() == 2U);
}

BOOST_AUTO_TEST_CASE(accepts_any_range_of_results, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::list<AsyncResult<int>> fs{pool.submit([] { return 1; }), pool.submit([] { return 2; })};
    auto r = pypool::wait(fs);
    BOOST_TEST(r.done.size() == 2U);
    AsyncResult<void> v = pool.submit([] {});
    auto rv = pypool::wait({v}, 10s, ReturnWhen::FirstCompleted);
    BOOST_TEST(rv.done.size() == 1U);
}

BOOST_AUTO_TEST_CASE(a_worker_waiting_on_its_own_pool_runs_queued_tasks, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);  // the only worker waits: only helping can finish the inner tasks
    auto outer = pool.submit([&pool] {
        std::vector<AsyncResult<int>> inner;
        for (int i = 0; i < 5; ++i) inner.push_back(pool.submit([](int x) { return x * x; }, i));
        auto first = pypool::wait(inner, ReturnWhen::FirstCompleted);
        auto all = pypool::wait(inner);
        int sum = 0;
        for (auto& f : all.done) sum += f.result();
        return static_cast<int>(first.done.size() >= 1) * 1000 + sum;
    });
    BOOST_TEST(outer.result() == 1030);
}

BOOST_AUTO_TEST_CASE(a_blocking_wait_on_the_callback_thread_throws_deadlock_error,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    auto needs_loop = pool.apply_async(blocked, std::tuple{gate.future()},
                                       {.callback = [](const int&) {}});
    std::promise<std::string> outcome;
    auto trigger = pool.submit([] { return 0; });
    trigger.add_done_callback([&](const AsyncResult<int>&) {
        try {
            (void)pypool::wait({needs_loop}, 10s);
            outcome.set_value("returned");
        } catch (const pypool::DeadlockError&) {
            outcome.set_value("deadlock");
        }
    });
    BOOST_TEST(outcome.get_future().get() == "deadlock");
}

BOOST_AUTO_TEST_CASE(a_satisfied_wait_on_the_callback_thread_returns, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    auto needs_loop = pool.apply_async(blocked, std::tuple{gate.future()},
                                       {.callback = [](const int&) {}});
    auto finished = pool.submit([] { return 1; });
    finished.wait();
    std::promise<std::string> outcome;
    auto trigger = pool.submit([] { return 0; });
    trigger.add_done_callback([&](const AsyncResult<int>&) {
        try {
            auto r = pypool::wait({needs_loop, finished}, ReturnWhen::FirstCompleted);
            auto z = pypool::wait({needs_loop}, 0s);  // a zero timeout only checks
            outcome.set_value(r.done.size() == 1 && z.not_done.size() == 1 ? "ok" : "wrong");
        } catch (const pypool::DeadlockError&) {
            outcome.set_value("deadlock");
        }
    });
    BOOST_TEST(outcome.get_future().get() == "ok");
}

BOOST_AUTO_TEST_CASE(many_concurrent_completions_are_all_seen, *utf::timeout(60)) {
    pypool::ThreadPool pool(4);
    for (int round = 0; round < 20; ++round) {
        std::latch start(1);
        std::vector<AsyncResult<int>> fs;
        for (int i = 0; i < 100; ++i)
            fs.push_back(pool.submit([&start](int x) {
                start.wait();
                return x;
            }, i));
        std::thread t([&] { start.count_down(); });
        auto r = pypool::wait(fs);
        t.join();
        BOOST_TEST(r.done.size() == 100U);
    }
}

BOOST_AUTO_TEST_CASE(waits_on_map_results_and_as_completed_yields_them, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::vector<pypool::MapResult<int>> maps;
    for (int k = 1; k <= 3; ++k)
        maps.push_back(pool.map_async([k](int x) { return x * k; }, std::vector<int>{1, 2, 3}));
    auto r = pypool::wait(maps);  // a range of MapResult: WaitResult<std::vector<int>>
    static_assert(std::is_same_v<decltype(r), pypool::WaitResult<std::vector<int>>>);
    BOOST_TEST(r.done.size() == 3U);
    auto r2 = pypool::wait({maps[0], maps[1]}, pypool::ReturnWhen::FirstCompleted);
    BOOST_TEST(r2.done.size() == 2U);
    int total = 0;
    for (auto& m : pypool::as_completed(maps))
        for (int v : m.result()) total += v;
    BOOST_TEST(total == 6 + 12 + 18);
}
