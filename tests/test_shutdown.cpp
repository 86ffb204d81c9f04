// ThreadPool::shutdown(wait, cancel_futures): idempotence, waiting, cancelling queued work,
// submitting afterwards, DeadlockError on the pool's own threads.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pypool/pypool.hpp>

#include "test_gate.hpp"

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using pypool::AsyncResult;

namespace {


template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

BOOST_AUTO_TEST_CASE(shutdown_waits_for_every_accepted_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(3);
    std::vector<AsyncResult<int>> fs;
    for (int i = 0; i < 50; ++i)
        fs.push_back(pool.submit([](int x) {
            std::this_thread::sleep_for(100us);
            return x;
        }, i));
    pool.shutdown();
    for (int i = 0; i < 50; ++i) {
        BOOST_TEST(fs[static_cast<std::size_t>(i)].done());  // already done: shutdown joined
        BOOST_TEST(fs[static_cast<std::size_t>(i)].result() == i);
    }
}

BOOST_AUTO_TEST_CASE(shutdown_is_idempotent, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    auto f = pool.submit([] { return 1; });
    f.wait();  // not queued any more: cancel_futures below cannot cancel it
    pool.shutdown(false);
    pool.shutdown(false, true);
    pool.shutdown();
    pool.shutdown();
    pool.shutdown(true, true);
    BOOST_TEST(f.result() == 1);
}

BOOST_AUTO_TEST_CASE(submit_after_shutdown_throws_runtime_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.shutdown();
    BOOST_TEST(error_of([&] { pool.submit([](int a, int b) { return a + b; }, 2, 5); }) ==
               "cannot schedule new futures after shutdown");
    BOOST_CHECK_THROW(pool.submit([] {}), pypool::RuntimeError);
    BOOST_CHECK_THROW(pool.apply_async([] {}), pypool::RuntimeError);  // whichever vocabulary
}

BOOST_AUTO_TEST_CASE(submit_after_shutdown_without_wait_throws_too, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.shutdown(false);
    BOOST_CHECK_THROW(pool.submit([] {}), pypool::RuntimeError);
}

BOOST_AUTO_TEST_CASE(the_first_stop_decides_the_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.close();
    pool.shutdown();
    BOOST_TEST(error_of([&] { pool.submit([] {}); }) == "Pool not running");
}

BOOST_AUTO_TEST_CASE(cancel_futures_cancels_every_queued_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    std::latch started(1);
    auto running = pool.submit([&started, g = gate.future()] {
        started.count_down();
        g.wait();
        return -1;
    });
    std::atomic<int> ran{0};
    std::vector<AsyncResult<int>> queued;
    for (int i = 0; i < 20; ++i)
        queued.push_back(pool.submit([&ran](int x) {
            ++ran;
            return x;
        }, i));
    started.wait();
    pool.shutdown(false, true);
    for (auto& f : queued) {
        BOOST_TEST(f.cancelled());
        BOOST_TEST(f.done());  // no error_callback: done at once
        BOOST_CHECK_THROW(f.result(), pypool::CancelledError);
    }
    BOOST_TEST(!running.cancelled());
    gate.open();
    pool.shutdown();
    BOOST_TEST(running.result() == -1);
    BOOST_TEST(ran.load() == 0);
    BOOST_TEST(pool.stats().cancelled == 20U);
}

BOOST_AUTO_TEST_CASE(cancel_futures_delivers_cancelled_error_to_error_callbacks,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    std::latch started(1);
    pool.submit([&started, g = gate.future()] {
        started.count_down();
        g.wait();
    });
    std::atomic<int> cancelled_seen{0};
    auto f = pool.apply_async([] { return 1; }, std::tuple{},
                              {.error_callback = [&](std::exception_ptr e) {
                                  try {
                                      std::rethrow_exception(e);
                                  } catch (const pypool::CancelledError&) {
                                      ++cancelled_seen;
                                  }
                              }});
    started.wait();
    pool.shutdown(false, true);
    BOOST_TEST(f.cancelled());
    BOOST_CHECK_THROW(f.result(), pypool::CancelledError);  // waits for the error_callback
    BOOST_TEST(cancelled_seen.load() == 1);
}

BOOST_AUTO_TEST_CASE(shutdown_without_wait_returns_while_a_task_runs, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    auto f = pool.submit([g = gate.future()] {
        g.wait();
        return 7;
    });
    pool.shutdown(false);  // would hang here (the case times out) if it waited
    BOOST_TEST(!f.done());
    gate.open();
    BOOST_TEST(f.result() == 7);
}

BOOST_AUTO_TEST_CASE(queued_work_still_runs_after_shutdown_without_wait, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::vector<AsyncResult<int>> fs;
    for (int i = -5; i < 5; ++i) fs.push_back(pool.submit([](int x) { return x < 0 ? -x : x; }, i));
    pool.shutdown(false);
    pool.join();
    int i = -5;
    for (auto& f : fs) {
        BOOST_TEST(f.result() == (i < 0 ? -i : i));
        ++i;
    }
}

BOOST_AUTO_TEST_CASE(shutdown_with_wait_on_a_worker_throws_deadlock_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    auto f = pool.submit([&pool]() -> std::string {
        try {
            pool.shutdown();
        } catch (const pypool::DeadlockError&) {
            return "deadlock";
        }
        return "returned";
    });
    BOOST_TEST(f.result() == "deadlock");
    BOOST_CHECK_THROW(pool.submit([] {}), pypool::RuntimeError);  // it did shut down
    pool.shutdown();
}

BOOST_AUTO_TEST_CASE(shutdown_without_wait_on_a_worker_works, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    auto f = pool.submit([&pool] {
        pool.shutdown(false);
        return 1;
    });
    BOOST_TEST(f.result() == 1);
    pool.shutdown();
}

BOOST_AUTO_TEST_CASE(shutdown_with_wait_on_the_callback_thread_throws_deadlock_error,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::promise<std::string> outcome;
    auto f = pool.submit([] { return 1; });
    f.add_done_callback([&](const AsyncResult<int>&) {
        try {
            pool.shutdown();
            outcome.set_value("returned");
        } catch (const pypool::DeadlockError&) {
            outcome.set_value("deadlock");
        }
    });
    BOOST_TEST(outcome.get_future().get() == "deadlock");
    pool.shutdown();
}

BOOST_AUTO_TEST_CASE(tasks_may_submit_follow_ups_after_shutdown, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    std::promise<AsyncResult<int>> follow_up;
    pool.submit([&, g = gate.future()] {
        g.wait();
        follow_up.set_value(pool.submit([] { return 99; }));  // from inside: accepted
    });
    pool.shutdown(false);
    gate.open();
    auto f = follow_up.get_future().get();
    pool.shutdown();  // join drains the follow-up too
    BOOST_TEST(f.done());
    BOOST_TEST(f.result() == 99);
}

BOOST_AUTO_TEST_CASE(shutdown_wait_after_a_cancelled_queued_task_does_not_hang,
                     *utf::timeout(60)) {
    // CPython gh-94440: a future cancelled right before shutdown(wait=True) hung it.
    pypool::ThreadPool pool(1);
    pool.submit([] { return 0; }).result();
    pool.submit([] { return 1; }).cancel();
    pool.shutdown();
}

BOOST_AUTO_TEST_CASE(the_destructor_after_shutdown_without_wait_joins, *utf::timeout(60)) {
    std::atomic<int> ran{0};
    {
        pypool::ThreadPool pool(2);
        for (int i = 0; i < 20; ++i) pool.submit([&ran] { ++ran; });
        pool.shutdown(false);
    }
    BOOST_TEST(ran.load() == 20);
}
