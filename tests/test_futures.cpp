// ThreadPool::submit and the concurrent.futures.Future vocabulary of AsyncResult: arguments,
// result/exception with timeouts, done/running/cancelled/cancel, add_done_callback order.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
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


std::size_t length_of(const std::string& s) { return s.size(); }

}  // namespace

BOOST_AUTO_TEST_CASE(submit_passes_variadic_arguments, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    auto f = pool.submit([](int a, double b, const std::string& c) { return c + std::to_string(a + static_cast<int>(b)); },
                         2, 3.0, std::string("n="));
    BOOST_TEST(f.result() == "n=5");
    BOOST_TEST(pool.submit([] { return 256; }).result() == 256);
}

BOOST_AUTO_TEST_CASE(submit_copies_lvalue_arguments_at_the_call, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    pool.submit([g = gate.future()] { g.wait(); });  // hold the only worker
    std::string s = "abc";
    auto f = pool.submit(length_of, s);  // takes const std::string&, but gets its own copy
    s = "changed after submit";
    gate.open();
    BOOST_TEST(f.result() == 3U);
}

BOOST_AUTO_TEST_CASE(submit_passes_a_reference_through_std_ref, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    int target = 0;
    pool.submit([](int& t) { t = 7; }, std::ref(target)).result();
    BOOST_TEST(target == 7);
}

BOOST_AUTO_TEST_CASE(submit_accepts_move_only_arguments_and_results, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    auto f = pool.submit([](std::unique_ptr<int> p, int k) { return std::make_unique<int>(*p * k); },
                         std::make_unique<int>(6), 7);
    std::unique_ptr<int> r = std::move(f).result();
    BOOST_TEST(*r == 42);
    auto callable = [p = std::make_unique<int>(5)] { return *p; };  // move-only callable
    BOOST_TEST(pool.submit(std::move(callable)).result() == 5);
}

BOOST_AUTO_TEST_CASE(result_rethrows_the_task_exception, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto f = pool.submit([]() -> int { throw std::out_of_range("boom"); });
    BOOST_CHECK_THROW(f.result(), std::out_of_range);
    BOOST_CHECK_THROW(f.result(1s), std::out_of_range);
    std::exception_ptr e = f.exception();
    BOOST_REQUIRE(e);
    BOOST_CHECK_THROW(std::rethrow_exception(e), std::out_of_range);
    BOOST_TEST((f.exception(0s) == e));
}

BOOST_AUTO_TEST_CASE(exception_is_null_for_a_successful_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto f = pool.submit([] { return 1; });
    BOOST_TEST(!f.exception());
    BOOST_TEST(!f.exception(0s));
}

BOOST_AUTO_TEST_CASE(result_and_exception_time_out_on_an_unfinished_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    auto running = pool.submit([g = gate.future()] { g.wait(); return 1; });
    auto queued = pool.submit([] { return 2; });
    BOOST_CHECK_THROW(running.result(0s), pypool::TimeoutError);
    BOOST_CHECK_THROW(running.result(10ms), pypool::TimeoutError);
    BOOST_CHECK_THROW(queued.result(0s), pypool::TimeoutError);
    BOOST_CHECK_THROW(running.exception(0s), pypool::TimeoutError);
    BOOST_CHECK_THROW(queued.exception(10ms), pypool::TimeoutError);
    gate.open();
    BOOST_TEST(running.result(30s) == 1);
    BOOST_TEST(queued.result(30s) == 2);
}

BOOST_AUTO_TEST_CASE(a_result_set_while_waiting_with_a_timeout_is_returned, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::promise<void> go;
    auto f = pool.submit([g = go.get_future()]() mutable { g.wait(); return 42; });
    std::thread t([&] { go.set_value(); });
    BOOST_TEST(f.result(30s) == 42);
    t.join();
}

BOOST_AUTO_TEST_CASE(states_of_a_queued_running_and_finished_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    std::latch started(1);
    auto running = pool.submit([&started, g = gate.future()] {
        started.count_down();
        g.wait();
        return 1;
    });
    auto queued = pool.submit([] { return 2; });
    started.wait();
    BOOST_TEST(running.running());
    BOOST_TEST(!running.done());
    BOOST_TEST(!running.cancelled());
    BOOST_TEST(!queued.running());
    BOOST_TEST(!queued.done());
    gate.open();
    queued.wait();
    running.wait();
    for (auto* f : {&running, &queued}) {
        BOOST_TEST(f->done());
        BOOST_TEST(!f->running());
        BOOST_TEST(!f->cancelled());
    }
}

BOOST_AUTO_TEST_CASE(cancel_succeeds_only_before_the_task_starts, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    std::latch started(1);
    auto running = pool.submit([&started, g = gate.future()] {
        started.count_down();
        g.wait();
        return 1;
    });
    auto queued = pool.submit([] { return 2; });
    started.wait();
    BOOST_TEST(!running.cancel());
    BOOST_TEST(running.running());
    BOOST_TEST(queued.cancel());
    BOOST_TEST(queued.cancelled());
    BOOST_TEST(queued.done());
    BOOST_TEST(!queued.running());
    BOOST_TEST(queued.cancel());  // cancelling again still says cancelled
    BOOST_CHECK_THROW(queued.result(), pypool::CancelledError);
    BOOST_CHECK_THROW(queued.result(0s), pypool::CancelledError);
    BOOST_CHECK_THROW(queued.exception(), pypool::CancelledError);
    BOOST_CHECK_THROW(queued.exception(0s), pypool::CancelledError);
    gate.open();
    BOOST_TEST(running.result() == 1);
    BOOST_TEST(!running.cancel());  // finished
    auto failed = pool.submit([]() -> int { throw std::runtime_error("x"); });
    failed.wait();
    BOOST_TEST(!failed.cancel());
    BOOST_TEST(!failed.cancelled());
}

BOOST_AUTO_TEST_CASE(a_result_cancelled_while_a_thread_waits_wakes_it, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    pool.submit([g = gate.future()] { g.wait(); });
    auto queued = pool.submit([] { return 2; });
    std::thread t([&] { queued.cancel(); });
    BOOST_CHECK_THROW(queued.result(30s), pypool::CancelledError);
    t.join();
}

BOOST_AUTO_TEST_CASE(done_callbacks_see_the_result, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::promise<int> value;
    std::promise<bool> failed;
    std::promise<bool> was_cancelled;
    auto ok = pool.submit([] { return 5; });
    ok.add_done_callback([&](const AsyncResult<int>& f) { value.set_value(f.result()); });
    auto bad = pool.submit([]() -> int { throw std::runtime_error("test"); });
    bad.add_done_callback([&](const AsyncResult<int>& f) { failed.set_value(f.exception() != nullptr); });
    Gate gate;
    pool.submit([g = gate.future()] { g.wait(); });
    pool.submit([g = gate.future()] { g.wait(); });
    auto queued = pool.submit([] { return 1; });
    queued.add_done_callback([&](const AsyncResult<int>& f) { was_cancelled.set_value(f.cancelled()); });
    BOOST_TEST(queued.cancel());
    BOOST_TEST(value.get_future().get() == 5);
    BOOST_TEST(failed.get_future().get());
    BOOST_TEST(was_cancelled.get_future().get());
}

BOOST_AUTO_TEST_CASE(done_callbacks_run_on_the_callback_thread_in_registration_order,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    auto f = pool.submit([g = gate.future()] { g.wait(); return 1; });
    std::vector<int> order;  // touched only by callbacks: no lock needed
    std::promise<void> all;
    const auto caller = std::this_thread::get_id();
    std::atomic<bool> on_caller{false};
    for (int i = 0; i < 5; ++i)
        f.add_done_callback([&, i](const AsyncResult<int>&) {
            if (std::this_thread::get_id() == caller) on_caller = true;
            order.push_back(i);
            if (i == 4) all.set_value();
        });
    gate.open();
    all.get_future().wait();
    BOOST_TEST((order == std::vector<int>{0, 1, 2, 3, 4}));
    BOOST_TEST(!on_caller.load());
}

BOOST_AUTO_TEST_CASE(a_done_callback_added_after_completion_still_runs, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto f = pool.submit([] { return 5; });
    f.wait();
    std::promise<int> got;
    f.add_done_callback([&](const AsyncResult<int>& r) { got.set_value(r.result()); });
    BOOST_TEST(got.get_future().get() == 5);
}

BOOST_AUTO_TEST_CASE(waiters_wake_before_done_callbacks_run, *utf::timeout(60)) {
    // The done callback blocks until the waiter has returned: if callbacks ran before
    // waiters woke, result() below would never return (the case times out).
    pypool::ThreadPool pool(1);
    std::promise<void> waiter_returned;
    std::promise<void> callback_done;
    Gate gate;
    auto f = pool.submit([g = gate.future()] { g.wait(); return 1; });
    f.add_done_callback([w = waiter_returned.get_future().share(), &callback_done](const AsyncResult<int>&) {
        w.wait();
        callback_done.set_value();
    });
    std::thread opener([&] { gate.open(); });
    BOOST_TEST(f.result() == 1);
    waiter_returned.set_value();
    callback_done.get_future().wait();
    opener.join();
}

BOOST_AUTO_TEST_CASE(multi_result_waiters_wake_before_done_callbacks_run, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::promise<void> waiter_returned;
    std::promise<void> callback_done;
    Gate gate;
    auto f = pool.submit([g = gate.future()] { g.wait(); return 1; });
    f.add_done_callback([w = waiter_returned.get_future().share(), &callback_done](const AsyncResult<int>&) {
        w.wait();
        callback_done.set_value();
    });
    std::thread opener([&] { gate.open(); });
    auto r = pypool::wait({f}, pypool::ReturnWhen::FirstCompleted);
    BOOST_TEST(r.done.size() == 1U);
    int n = 0;
    for ([[maybe_unused]] auto& x : pypool::as_completed({f})) ++n;
    BOOST_TEST(n == 1);
    waiter_returned.set_value();
    callback_done.get_future().wait();
    opener.join();
}

BOOST_AUTO_TEST_CASE(a_throwing_done_callback_does_not_stop_the_others, *utf::timeout(60)) {
    std::promise<std::string> reported;
    pypool::PoolOptions opts;
    opts.processes = 1;
    opts.on_callback_error = [&](std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            reported.set_value(ex.what());
        }
    };
    pypool::ThreadPool pool(std::move(opts));
    Gate gate;
    auto f = pool.submit([g = gate.future()] { g.wait(); return 5; });
    std::promise<bool> second_ran;
    f.add_done_callback([](const AsyncResult<int>&) { throw std::runtime_error("doh!"); });
    f.add_done_callback([&](const AsyncResult<int>&) { second_ran.set_value(true); });
    gate.open();
    BOOST_TEST(second_ran.get_future().get());
    BOOST_TEST(reported.get_future().get() == "doh!");
    BOOST_TEST(f.result() == 5);
}

BOOST_AUTO_TEST_CASE(futures_compare_and_hash_by_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto a = pool.submit([] { return 1; });
    auto b = pool.submit([] { return 1; });
    AsyncResult<int> a2 = a;
    BOOST_TEST((a == a2));
    BOOST_TEST(!(a == b));
    BOOST_TEST(std::hash<AsyncResult<int>>{}(a) == std::hash<AsyncResult<int>>{}(a2));
    pypool::Future<int> as_future = a;  // the concurrent.futures name
    BOOST_TEST((as_future == a));
}

BOOST_AUTO_TEST_CASE(an_empty_future_reports_not_done_and_throws_on_use, *utf::timeout(60)) {
    AsyncResult<int> f;
    BOOST_TEST(!f.done());
    BOOST_TEST(!f.running());
    BOOST_TEST(!f.cancelled());
    BOOST_CHECK_THROW(f.result(), pypool::ValueError);
    BOOST_CHECK_THROW(f.exception(), pypool::ValueError);
    BOOST_CHECK_THROW(f.cancel(), pypool::ValueError);
    BOOST_CHECK_THROW(f.add_done_callback([](const AsyncResult<int>&) {}), pypool::ValueError);
}

BOOST_AUTO_TEST_CASE(done_callbacks_added_concurrently_with_completion_all_run,
                     *utf::timeout(60)) {
    // Races add_done_callback against completion; each callback must run exactly once.
    pypool::ThreadPool pool(2);
    for (int round = 0; round < 200; ++round) {
        // A lost callback leaves this waiting (the case times out). Shared: the last
        // count_down may still touch the latch after wait() returned.
        auto ran = std::make_shared<std::latch>(4);
        std::latch go(2);
        auto f = pool.submit([&go] { go.arrive_and_wait(); return 1; });
        go.arrive_and_wait();
        for (int i = 0; i < 4; ++i) f.add_done_callback([ran](const AsyncResult<int>&) { ran->count_down(); });
        ran->wait();
        f.wait();
    }
}
