// AsyncResult<T>: both vocabularies (get/wait/ready/successful and result/exception/done/
// running/cancelled/cancel/add_done_callback), empty handles, identity.
#include <boost/test/unit_test.hpp>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <pypool/detail/task.hpp>
#include <pypool/pypool.hpp>

#include "live_count.hpp"

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using pypool::AsyncResult;

namespace {

std::string current_thread_name() {
    char buf[64] = {};
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    return buf;
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A task that reports it started, then blocks until released.
struct Blocker {
    std::latch started{1};
    std::latch release{1};
    auto task() {
        return [this] {
            started.count_down();
            release.wait();
        };
    }
};

template <class Fn>
void check_no_state(Fn&& fn) {
    try {
        fn();
        BOOST_FAIL("no ValueError thrown");
    } catch (const pypool::ValueError& e) {
        BOOST_TEST(std::string(e.what()) == "AsyncResult has no state");
    }
}

}  // namespace

// ---- multiprocessing vocabulary ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(get_returns_the_value, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    auto r = pool.apply_async([](int a, int b) { return a * b; }, std::tuple{6, 7});
    BOOST_TEST(r.get() == 42);
    BOOST_TEST(r.get() == 42);  // repeatable
}

BOOST_AUTO_TEST_CASE(get_with_timeout_returns_the_value_when_ready_in_time, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return std::string("done"); });
    BOOST_TEST(r.get(30s) == "done");
}

BOOST_AUTO_TEST_CASE(get_with_timeout_throws_timeout_error_when_not_ready, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    BOOST_CHECK_THROW(r.get(20ms), pypool::TimeoutError);
    BOOST_TEST(!r.ready());
    b.release.count_down();
    r.get();
    BOOST_TEST(r.ready());
}

BOOST_AUTO_TEST_CASE(timeout_error_is_a_runtime_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    BOOST_CHECK_THROW(r.get(1ms), std::runtime_error);
    b.release.count_down();
}

BOOST_AUTO_TEST_CASE(wait_blocks_until_ready, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::atomic<bool> finished{false};
    auto r = pool.apply_async([&] {
        std::this_thread::sleep_for(10ms);  // only makes the task last; order is not asserted on it
        finished = true;
    });
    r.wait();
    BOOST_TEST(finished.load());
    BOOST_TEST(r.ready());
}

BOOST_AUTO_TEST_CASE(wait_with_timeout_returns_false_then_true, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    BOOST_TEST(!r.wait(20ms));
    b.release.count_down();
    BOOST_TEST(r.wait(30s));
    BOOST_TEST(r.wait(0s));
}

BOOST_AUTO_TEST_CASE(ready_is_false_until_the_task_finished, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    b.started.wait();
    BOOST_TEST(!r.ready());
    b.release.count_down();
    r.wait();
    BOOST_TEST(r.ready());
}

BOOST_AUTO_TEST_CASE(successful_before_ready_throws_value_error_not_ready, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    try {
        (void)r.successful();
        BOOST_FAIL("successful() did not throw");
    } catch (const pypool::ValueError& e) {
        BOOST_TEST(std::string(e.what()).find("not ready") != std::string::npos);
    }
    b.release.count_down();
    r.wait();
    BOOST_TEST(r.successful());
}

BOOST_AUTO_TEST_CASE(successful_is_false_for_a_failed_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([]() -> int { throw std::runtime_error("no"); });
    r.wait();
    BOOST_TEST(!r.successful());
    BOOST_CHECK_THROW(r.get(), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(get_on_rvalue_moves_a_move_only_value_out, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return std::make_unique<int>(5); });
    auto other = r;  // a second handle to the same state
    std::unique_ptr<int> p = std::move(r).get();
    BOOST_REQUIRE(p);
    BOOST_TEST(*p == 5);
    BOOST_TEST(other.get() == nullptr);  // the other handle sees the moved-from value
}

BOOST_AUTO_TEST_CASE(get_with_timeout_on_rvalue_moves_the_value_out, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return std::make_unique<std::string>("moved"); });
    auto p = std::move(r).get(30s);
    BOOST_TEST(*p == "moved");
}

BOOST_AUTO_TEST_CASE(result_on_rvalue_moves_the_value_out, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.submit([] { return std::make_unique<int>(9); });
    auto p = std::move(r).result();
    BOOST_TEST(*p == 9);
    auto r2 = pool.submit([] { return std::make_unique<int>(10); });
    BOOST_TEST(*std::move(r2).result(30s) == 10);
}

BOOST_AUTO_TEST_CASE(get_lvalue_returns_a_reference_into_the_shared_state, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return std::string("shared"); });
    auto copy = r;
    const std::string& a = r.get();
    const std::string& b = copy.get();
    BOOST_TEST(&a == &b);
}

BOOST_AUTO_TEST_CASE(void_result_get_returns_and_rethrows, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::atomic<int> ran{0};
    AsyncResult<void> ok = pool.apply_async([&] { ++ran; });
    ok.get();
    std::move(ok).get();
    BOOST_TEST(ran.load() == 1);
    AsyncResult<void> bad = pool.apply_async([] { throw std::logic_error("void failed"); });
    BOOST_CHECK_THROW(bad.get(), std::logic_error);
    BOOST_CHECK_THROW(bad.get(30s), std::logic_error);
}

BOOST_AUTO_TEST_CASE(move_only_callable_is_accepted, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto p = std::make_unique<int>(4);
    auto r = pool.apply_async([p = std::move(p)] { return *p * 10; });
    BOOST_TEST(r.get() == 40);
}

BOOST_AUTO_TEST_CASE(move_only_arguments_are_moved_into_the_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([](std::unique_ptr<int> p, int k) { return *p + k; },
                              std::tuple{std::make_unique<int>(3), 4});
    BOOST_TEST(r.get() == 7);
    auto f = pool.submit([](std::unique_ptr<int> p) { return *p; }, std::make_unique<int>(8));
    BOOST_TEST(f.result() == 8);
}

BOOST_AUTO_TEST_CASE(arguments_are_copied_into_the_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::string s = "original";
    auto r = pool.apply_async(
        [](std::string mine) {
            mine += " changed";
            return mine;
        },
        std::tuple{s});
    BOOST_TEST(r.get() == "original changed");
    BOOST_TEST(s == "original");
}

BOOST_AUTO_TEST_CASE(std_ref_arguments_are_shared, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    int counter = 0;
    pool.apply([](int& c) { c += 5; }, std::tuple{std::ref(counter)});
    BOOST_TEST(counter == 5);
    std::string text = "a";
    pool.submit([](std::string& t) { t += "b"; }, std::ref(text)).get();
    BOOST_TEST(text == "ab");
}

BOOST_AUTO_TEST_CASE(same_exception_object_is_rethrown_every_time, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([]() -> int { throw std::runtime_error("identity"); });
    const void* first = nullptr;
    const void* second = nullptr;
    try {
        (void)r.get();
    } catch (const std::runtime_error& e) {
        first = &e;
    }
    try {
        (void)r.get(30s);
    } catch (const std::runtime_error& e) {
        second = &e;
    }
    BOOST_TEST(first != nullptr);
    BOOST_TEST(first == second);
    std::exception_ptr ep = r.exception();
    try {
        std::rethrow_exception(ep);
    } catch (const std::runtime_error& e) {
        BOOST_TEST(&e == first);
    }
}

BOOST_AUTO_TEST_CASE(a_thrown_int_is_caught_and_rethrown, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([]() -> int { throw 42; });
    try {
        (void)r.get();
        BOOST_FAIL("no exception");
    } catch (int v) {
        BOOST_TEST(v == 42);
    }
    BOOST_TEST(!r.successful());
}

BOOST_AUTO_TEST_CASE(a_thrown_string_is_caught_and_rethrown, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { throw std::string("text"); });
    try {
        r.get();
        BOOST_FAIL("no exception");
    } catch (const std::string& s) {
        BOOST_TEST(s == "text");
    }
    // the worker survived
    BOOST_TEST(pool.apply([] { return 1; }) == 1);
}

BOOST_AUTO_TEST_CASE(zero_timeout_only_checks, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async([&] {
        b.started.count_down();
        b.release.wait();
        return 3;
    });
    BOOST_TEST(!r.wait(0s));
    BOOST_CHECK_THROW((void)r.get(0s), pypool::TimeoutError);
    BOOST_CHECK_THROW((void)r.exception(0ms), pypool::TimeoutError);
    b.release.count_down();
    r.wait();
    BOOST_TEST(r.wait(0s));
    BOOST_TEST(r.get(0s) == 3);
}

BOOST_AUTO_TEST_CASE(negative_timeout_only_checks, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    BOOST_TEST(!r.wait(-5s));
    BOOST_CHECK_THROW(r.get(-1ms), pypool::TimeoutError);
    b.release.count_down();
    r.wait();
    BOOST_TEST(r.wait(-5s));
    r.get(-1s);
}

BOOST_AUTO_TEST_CASE(huge_timeout_waits_like_no_timeout, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return 1; });
    BOOST_TEST(r.get(std::chrono::hours::max()) == 1);
    BOOST_TEST(r.wait(std::chrono::seconds::max()));
}

// ---- empty handles ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(empty_handle_reports_no_state) {
    AsyncResult<int> r;
    BOOST_TEST(!r.valid());
    BOOST_TEST(!r.ready());
    BOOST_TEST(!r.done());
    BOOST_TEST(!r.running());
    BOOST_TEST(!r.cancelled());
}

BOOST_AUTO_TEST_CASE(empty_handle_waits_throw_value_error_no_state) {
    AsyncResult<int> r;
    check_no_state([&] { (void)r.get(); });
    check_no_state([&] { (void)r.get(1s); });
    check_no_state([&] { (void)AsyncResult<int>().get(); });
    check_no_state([&] { (void)AsyncResult<int>().get(1s); });
    check_no_state([&] { r.wait(); });
    check_no_state([&] { (void)r.wait(1s); });
    check_no_state([&] { (void)r.wait(0s); });
    check_no_state([&] { (void)r.result(); });
    check_no_state([&] { (void)r.result(1s); });
    check_no_state([&] { (void)r.exception(); });
    check_no_state([&] { (void)r.exception(1s); });
    check_no_state([&] { (void)r.successful(); });
    check_no_state([&] { (void)r.cancel(); });
    check_no_state([&] { r.add_done_callback([](const AsyncResult<int>&) {}); });
}

BOOST_AUTO_TEST_CASE(empty_void_handle_throws_value_error_no_state) {
    AsyncResult<void> r;
    BOOST_TEST(!r.valid());
    check_no_state([&] { r.get(); });
    check_no_state([&] { r.wait(); });
    check_no_state([&] { (void)r.successful(); });
    check_no_state([&] { (void)r.cancel(); });
}

BOOST_AUTO_TEST_CASE(empty_handles_compare_equal_and_hash_alike) {
    AsyncResult<int> a;
    AsyncResult<int> b;
    BOOST_TEST((a == b));
    BOOST_TEST(std::hash<AsyncResult<int>>{}(a) == std::hash<AsyncResult<int>>{}(b));
}

// ---- identity ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(copies_of_a_handle_are_equal_and_hash_alike, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return 1; });
    auto copy = r;
    auto moved_copy = AsyncResult<int>(copy);
    BOOST_TEST((r == copy));
    BOOST_TEST((r == moved_copy));
    BOOST_TEST(std::hash<AsyncResult<int>>{}(r) == std::hash<AsyncResult<int>>{}(copy));
    BOOST_TEST(!(r == AsyncResult<int>()));
    r.wait();
}

BOOST_AUTO_TEST_CASE(different_tasks_are_not_equal, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto a = pool.apply_async([] { return 1; });
    auto b = pool.apply_async([] { return 1; });
    BOOST_TEST(!(a == b));
    BOOST_TEST((a != b));
    std::unordered_set<AsyncResult<int>> set{a, b, a};
    BOOST_TEST(set.size() == 2U);
    a.wait();
    b.wait();
}

BOOST_AUTO_TEST_CASE(a_moved_from_handle_is_empty, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto a = pool.apply_async([] { return 1; });
    auto b = std::move(a);
    BOOST_TEST(!a.valid());  // NOLINT(bugprone-use-after-move)
    BOOST_TEST(b.get() == 1);
}

// ---- concurrent.futures vocabulary ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(result_returns_the_value_and_rethrows, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto ok = pool.apply_async([] { return 11; });
    BOOST_TEST(ok.result() == 11);
    BOOST_TEST(ok.result(30s) == 11);
    auto bad = pool.apply_async([]() -> int { throw std::invalid_argument("bad"); });
    BOOST_CHECK_THROW((void)bad.result(), std::invalid_argument);
    BOOST_CHECK_THROW((void)bad.result(30s), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(result_with_timeout_throws_timeout_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async([&] {
        b.release.wait();
        return 1;
    });
    BOOST_CHECK_THROW((void)r.result(10ms), pypool::TimeoutError);
    BOOST_CHECK_THROW((void)r.exception(10ms), pypool::TimeoutError);
    b.release.count_down();
    BOOST_TEST(r.result() == 1);
}

BOOST_AUTO_TEST_CASE(exception_is_null_on_success, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return 1; });
    BOOST_TEST(!r.exception());
    BOOST_TEST(!r.exception(30s));
}

BOOST_AUTO_TEST_CASE(exception_returns_the_task_exception_on_failure, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([]() -> int { throw std::domain_error("domain"); });
    std::exception_ptr e = r.exception();
    BOOST_REQUIRE(e);
    BOOST_CHECK_THROW(std::rethrow_exception(e), std::domain_error);
    BOOST_TEST((r.exception(30s) == e));  // the same stored object
}

BOOST_AUTO_TEST_CASE(done_is_true_once_finished, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    b.started.wait();
    BOOST_TEST(!r.done());
    b.release.count_down();
    r.wait();
    BOOST_TEST(r.done());
}

BOOST_AUTO_TEST_CASE(running_is_true_while_the_task_runs, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    auto queued = pool.apply_async([] {});
    b.started.wait();
    BOOST_TEST(r.running());
    BOOST_TEST(!queued.running());  // still waiting for the single worker
    BOOST_TEST(!queued.done());
    b.release.count_down();
    r.wait();
    queued.wait();
    BOOST_TEST(!r.running());
    BOOST_TEST(!queued.running());
}

BOOST_AUTO_TEST_CASE(cancelled_is_false_for_a_normal_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return 1; });
    r.wait();
    BOOST_TEST(!r.cancelled());
}

BOOST_AUTO_TEST_CASE(cancel_of_a_queued_task_succeeds_and_get_throws_cancelled_error,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto running = pool.apply_async(b.task());
    std::atomic<bool> ran{false};
    auto queued = pool.apply_async([&] {
        ran = true;
        return 1;
    });
    b.started.wait();
    BOOST_TEST(queued.cancel());
    BOOST_TEST(queued.cancelled());
    BOOST_TEST(queued.done());
    BOOST_TEST(queued.ready());
    BOOST_TEST(!queued.running());
    BOOST_TEST(queued.cancel());  // cancelling again still reports cancelled
    BOOST_CHECK_THROW((void)queued.get(), pypool::CancelledError);
    BOOST_CHECK_THROW((void)queued.result(30s), pypool::CancelledError);
    BOOST_CHECK_THROW((void)queued.exception(), pypool::CancelledError);
    BOOST_TEST(!queued.successful());
    b.release.count_down();
    running.get();
    pool.close();
    pool.join();
    BOOST_TEST(!ran.load());
}

BOOST_AUTO_TEST_CASE(cancelled_task_with_error_callback_is_done_after_the_callback_returned,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto running = pool.apply_async(b.task());
    std::latch callback_started(1), callback_release(1);
    bool saw_cancelled_error = false;  // written by the error_callback, read after get()
    auto queued = pool.apply_async([] { return 1; }, std::tuple{},
                                   {.error_callback = [&](std::exception_ptr e) {
                                       callback_started.count_down();
                                       callback_release.wait();
                                       try {
                                           std::rethrow_exception(e);
                                       } catch (const pypool::CancelledError&) {
                                           saw_cancelled_error = true;
                                       } catch (...) {
                                       }
                                   }});
    b.started.wait();
    BOOST_TEST(queued.cancel());
    BOOST_TEST(queued.cancelled());  // at once
    callback_started.wait();
    BOOST_TEST(!queued.done());  // ... but done only after the error_callback
    BOOST_TEST(!queued.ready());
    BOOST_TEST(!queued.running());
    BOOST_TEST(queued.cancel());
    callback_release.count_down();
    BOOST_CHECK_THROW((void)queued.get(), pypool::CancelledError);
    BOOST_TEST(saw_cancelled_error);
    BOOST_TEST(queued.done());
    b.release.count_down();
}

BOOST_AUTO_TEST_CASE(cancel_of_a_running_task_fails, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    b.started.wait();
    BOOST_TEST(!r.cancel());
    BOOST_TEST(!r.cancelled());
    b.release.count_down();
    r.get();
    BOOST_TEST(r.successful());
}

BOOST_AUTO_TEST_CASE(cancel_of_a_finished_task_fails, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return 2; });
    r.wait();
    BOOST_TEST(!r.cancel());
    BOOST_TEST(!r.cancelled());
    BOOST_TEST(r.get() == 2);
}

BOOST_AUTO_TEST_CASE(cancelled_error_is_a_runtime_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto running = pool.apply_async(b.task());
    auto queued = pool.apply_async([] {});
    b.started.wait();
    BOOST_TEST(queued.cancel());
    BOOST_CHECK_THROW(queued.get(), std::runtime_error);
    b.release.count_down();
}

BOOST_AUTO_TEST_CASE(add_done_callback_runs_on_the_callback_thread, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async([&] {
        b.release.wait();
        return 5;
    });
    std::promise<std::pair<std::string, int>> seen;
    r.add_done_callback([&](const AsyncResult<int>& done) {
        seen.set_value({current_thread_name(), done.get()});
    });
    b.release.count_down();
    auto [name, value] = seen.get_future().get();
    BOOST_TEST(ends_with(name, "-loop"));
    BOOST_TEST(value == 5);
}

BOOST_AUTO_TEST_CASE(add_done_callback_after_completion_runs_on_the_callback_thread,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 1, .thread_name_prefix = "done"});
    auto r = pool.apply_async([] { return 6; });
    r.wait();
    std::promise<std::string> seen;
    r.add_done_callback([&](const AsyncResult<int>&) { seen.set_value(current_thread_name()); });
    BOOST_TEST(seen.get_future().get() == "done-loop");
}

BOOST_AUTO_TEST_CASE(add_done_callback_receives_a_handle_to_the_same_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return 1; });
    std::promise<bool> same;
    r.add_done_callback([&](const AsyncResult<int>& h) { same.set_value(h == r); });
    BOOST_TEST(same.get_future().get());
}

BOOST_AUTO_TEST_CASE(add_done_callback_is_called_for_failed_and_cancelled_tasks,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto failed = pool.apply_async([]() -> int { throw std::runtime_error("x"); });
    std::promise<bool> failed_seen;
    failed.add_done_callback([&](const AsyncResult<int>& h) { failed_seen.set_value(!h.successful()); });
    BOOST_TEST(failed_seen.get_future().get());

    Blocker b;
    auto running = pool.apply_async(b.task());
    auto queued = pool.apply_async([] { return 1; });
    std::promise<bool> cancelled_seen;
    queued.add_done_callback(
        [&](const AsyncResult<int>& h) { cancelled_seen.set_value(h.cancelled()); });
    b.started.wait();
    BOOST_TEST(queued.cancel());
    BOOST_TEST(cancelled_seen.get_future().get());
    b.release.count_down();
}

BOOST_AUTO_TEST_CASE(add_done_callback_after_join_runs_at_once_on_the_calling_thread,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return 3; });
    pool.close();
    pool.join();
    std::thread::id ran_on;
    int value = 0;
    r.add_done_callback([&](const AsyncResult<int>& h) {
        ran_on = std::this_thread::get_id();
        value = h.get();
    });
    BOOST_TEST((ran_on == std::this_thread::get_id()));
    BOOST_TEST(value == 3);
}

BOOST_AUTO_TEST_CASE(add_done_callback_after_the_pool_is_gone_runs_at_once, *utf::timeout(60)) {
    AsyncResult<int> r;
    {
        pypool::ThreadPool pool(1);
        r = pool.apply_async([] { return 4; });
    }
    bool called = false;
    r.add_done_callback([&](const AsyncResult<int>& h) { called = h.get() == 4; });
    BOOST_TEST(called);
    BOOST_TEST(r.get() == 4);  // the handle outlives its pool
}

BOOST_AUTO_TEST_CASE(done_callbacks_run_in_the_order_they_were_added, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    std::vector<int> order;  // touched only on the callback thread
    std::promise<void> all;
    for (int i = 0; i < 5; ++i) {
        r.add_done_callback([&, i](const AsyncResult<void>&) {
            order.push_back(i);
            if (i == 4) all.set_value();
        });
    }
    b.release.count_down();
    all.get_future().get();
    BOOST_TEST(order == (std::vector<int>{0, 1, 2, 3, 4}), boost::test_tools::per_element());
}

// Done callbacks share the state's listener list with the waiters of wait/as_completed
// (issue 15, memory): neither may lose or reorder the other.
BOOST_AUTO_TEST_CASE(done_callbacks_and_as_completed_on_one_pending_result_both_run,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto r = pool.apply_async(b.task());
    std::vector<int> order;  // touched only on the callback thread
    std::promise<void> all;
    r.add_done_callback([&](const AsyncResult<void>&) { order.push_back(0); });
    std::promise<void> iterating;
    std::thread waiter([&] {
        std::vector<AsyncResult<void>> rs{r};
        iterating.set_value();
        int yielded = 0;
        for (auto& x : pypool::as_completed(rs, 30s)) yielded += x.done() ? 1 : 0;
        BOOST_TEST(yielded == 1);
    });
    iterating.get_future().get();
    for (int i = 1; i < 4; ++i) {
        r.add_done_callback([&, i](const AsyncResult<void>&) {
            order.push_back(i);
            if (i == 3) all.set_value();
        });
    }
    b.release.count_down();
    waiter.join();
    all.get_future().get();
    BOOST_TEST(order == (std::vector<int>{0, 1, 2, 3}), boost::test_tools::per_element());
}

// The figure behind MEM in bench/: a task of a stateless callable and one 8-byte argument is
// one 88-byte block (a 96-byte malloc chunk), no more. The callable takes no room, and the
// loop's link shares a word with the pool's id.
BOOST_AUTO_TEST_CASE(a_small_task_state_fits_88_bytes) {
    auto twice = [](std::int64_t x) { return x * 2; };
    using State = pypool::detail::TaskState<std::int64_t, decltype(twice),
                                            std::tuple<std::int64_t>, false>;
    BOOST_TEST(sizeof(State) <= 88U);
    std::int64_t counter = 0;
    auto bump = [&counter] { ++counter; };  // fire and forget: one reference, no arguments
    using Void = pypool::detail::TaskState<void, decltype(bump), std::tuple<>, false>;
    BOOST_TEST(sizeof(Void) <= 72U);
}

BOOST_AUTO_TEST_CASE(future_is_an_alias_of_async_result, *utf::timeout(60)) {
    static_assert(std::is_same_v<pypool::Future<int>, AsyncResult<int>>);
    pypool::ThreadPool pool(1);
    pypool::Future<int> f = pool.submit([](int x) { return x + 1; }, 1);
    BOOST_TEST(f.result() == 2);
}

// Issue 11 item 1: whether a result's pool still runs is not decided by the pool's
// address. A new pool built where the dead one was must not get the old result's done
// callback: it runs at once on the calling thread.
BOOST_AUTO_TEST_CASE(add_done_callback_after_the_pool_is_gone_ignores_a_new_pool_at_its_address,
                     *utf::timeout(60)) {
    std::optional<pypool::ThreadPool> pool;
    int same_address = 0;
    for (int round = 0; round < 20; ++round) {
        pool.emplace(1);
        const void* old_address = &*pool;
        AsyncResult<int> r = pool->submit([] { return 1; });
        BOOST_TEST(r.result() == 1);
        pool.reset();
        pool.emplace(1);  // most likely at the same address
        same_address += &*pool == old_address ? 1 : 0;
        const auto caller = std::this_thread::get_id();
        bool ran_here = false;
        r.add_done_callback([&](const AsyncResult<int>&) {
            ran_here = std::this_thread::get_id() == caller;
        });
        BOOST_TEST(ran_here);  // ran inline, not on the new pool's callback thread later
        pool->close();
        pool->join();
    }
    BOOST_TEST_MESSAGE("new pool at the old address in " << same_address << " of 20 rounds");
}

// ---- handles as keys, operations through const (issue 13) ---------------------------------

BOOST_AUTO_TEST_CASE(results_as_std_map_keys_can_be_cancelled_while_iterating,
                     *utf::timeout(60)) {
    // Python: futures = {ex.submit(f, i): i for i in ...}; for fut in futures: fut.cancel()
    pypool::ThreadPool pool(1);
    Blocker b;
    auto running = pool.apply_async(b.task());
    b.started.wait();
    std::map<pypool::Future<int>, int> futures;
    for (int i = 0; i < 4; ++i) futures.emplace(pool.submit([](int x) { return x; }, i), i);
    BOOST_TEST(futures.size() == 4U);
    int cancelled = 0;
    for (const auto& [fut, i] : futures) {
        static_assert(std::is_const_v<std::remove_reference_t<decltype(fut)>>);
        if (fut.cancel()) ++cancelled;  // a const key: cancel() is const
        BOOST_TEST(fut.cancelled());
        (void)i;
    }
    BOOST_TEST(cancelled == 4);
    b.release.count_down();
    running.get();
    // a key finds its entry again from another copy of the handle
    auto first = futures.begin()->first;
    BOOST_TEST(futures.count(first) == 1U);
    BOOST_TEST(futures.at(first) == futures.begin()->second);
}

BOOST_AUTO_TEST_CASE(results_as_unordered_map_keys_take_done_callbacks_through_const,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::unordered_map<pypool::Future<int>, int> futures;
    for (int i = 0; i < 5; ++i) futures.emplace(pool.submit([](int x) { return x * x; }, i), i);
    std::latch all_called(5);
    std::atomic<int> sum{0};
    for (const auto& [fut, i] : futures) {
        fut.add_done_callback([&](const pypool::Future<int>& f) {  // const key
            if (!f.cancelled()) sum += f.get();
            all_called.count_down();
        });
        BOOST_TEST((!fut.cancel() || fut.cancelled()));
    }
    all_called.wait();
    int expected = 0;
    for (const auto& [fut, i] : futures)
        if (!fut.cancelled()) expected += i * i;
    BOOST_TEST(sum.load() == expected);
}

BOOST_AUTO_TEST_CASE(map_results_cancel_through_const, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto running = pool.apply_async(b.task());
    b.started.wait();
    const auto m = pool.map_async([](int x) { return x; }, std::vector<int>{1, 2, 3});
    BOOST_TEST(m.cancel());
    std::atomic<bool> called{false};
    m.add_done_callback([&](const AsyncResult<std::vector<int>>& r) { called = r.cancelled(); });
    b.release.count_down();
    running.get();
    pool.close();
    pool.join();
    BOOST_TEST(m.cancelled());
    BOOST_TEST(called.load());
}

BOOST_AUTO_TEST_CASE(handles_order_by_task_identity) {
    pypool::ThreadPool pool(1);
    auto a = pool.submit([] { return 1; });
    auto b = pool.submit([] { return 2; });
    auto a2 = a;
    BOOST_TEST((a <=> a2 == 0));
    BOOST_TEST(((a < b) != (b < a)));
    BOOST_TEST((AsyncResult<int>() <=> AsyncResult<int>() == 0));
    a.get();
    b.get();
}

// ---- pypool::what (Python's str(e)) --------------------------------------------------------

namespace {
struct NotAStdException {};
}  // namespace

BOOST_AUTO_TEST_CASE(what_returns_the_message_of_a_std_exception) {
    BOOST_TEST(pypool::what(std::make_exception_ptr(std::runtime_error("boom"))) == "boom");
    BOOST_TEST(pypool::what(std::make_exception_ptr(pypool::CancelledError())) ==
               "task was cancelled");
}

BOOST_AUTO_TEST_CASE(what_describes_the_type_of_anything_else) {
    BOOST_TEST(pypool::what(std::make_exception_ptr(42)) == "unknown exception of type int");
    const std::string s = pypool::what(std::make_exception_ptr(NotAStdException{}));
    BOOST_TEST(s.find("NotAStdException") != std::string::npos);
    BOOST_TEST(pypool::what(nullptr) == "");
}

BOOST_AUTO_TEST_CASE(what_reads_a_task_failure_in_an_error_callback, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::string message;
    auto r = pool.apply_async([]() -> int { throw std::invalid_argument("bad input"); },
                              std::tuple{},
                              {.error_callback = [&](std::exception_ptr e) {
                                  message = pypool::what(e);
                              }});
    r.wait();
    BOOST_TEST(message == "bad input");
    BOOST_TEST(pypool::what(r.exception()) == "bad input");
}

// ---- a task's callable and arguments: destroyed exactly once on every path ------------------
// (the task keeps them without a flag of their own: detail/task.hpp)

using LiveArg = Live<0>;

BOOST_AUTO_TEST_CASE(arguments_of_a_task_that_ran_are_destroyed_once, *utf::timeout(60)) {
    {
        pypool::ThreadPool pool(2);
        LiveArg captured;
        auto r = pool.apply_async([captured](LiveArg) { return 1; }, std::tuple{LiveArg{}});
        BOOST_TEST(r.get() == 1);
        BOOST_TEST(LiveArg::count.load() == 1);  // ours only, while the handle lives
    }
    BOOST_TEST(LiveArg::count.load() == 0);
}

BOOST_AUTO_TEST_CASE(arguments_of_a_task_cancelled_while_queued_are_destroyed_once,
                     *utf::timeout(60)) {
    {
        pypool::ThreadPool pool(1);
        Blocker b;
        auto running = pool.apply_async(b.task());
        auto queued = pool.apply_async([](LiveArg) { return 1; }, std::tuple{LiveArg{}});
        b.started.wait();
        BOOST_TEST(queued.cancel());
        b.release.count_down();
        running.get();
        pool.close();
        pool.join();  // the worker dropped the cancelled task
        BOOST_TEST(LiveArg::count.load() == 0);  // while the handle lives
        BOOST_CHECK_THROW((void)queued.get(), pypool::CancelledError);
    }
    BOOST_TEST(LiveArg::count.load() == 0);
}

BOOST_AUTO_TEST_CASE(arguments_of_tasks_discarded_by_terminate_are_destroyed_once,
                     *utf::timeout(60)) {
    {
        pypool::ThreadPool pool(1);
        Blocker b;
        auto running = pool.apply_async(b.task());
        auto cancelled_first = pool.apply_async([](LiveArg) { return 1; }, std::tuple{LiveArg{}});
        auto discarded = pool.apply_async([](LiveArg) { return 2; }, std::tuple{LiveArg{}});
        b.started.wait();
        BOOST_TEST(cancelled_first.cancel());  // then terminate() discards it as well
        pool.terminate();  // returns at once; the running task finishes
        b.release.count_down();
        pool.join();
        BOOST_CHECK_THROW((void)cancelled_first.get(), pypool::CancelledError);
        BOOST_CHECK_THROW((void)discarded.get(), pypool::CancelledError);
        BOOST_TEST(LiveArg::count.load() == 0);
    }
    BOOST_TEST(LiveArg::count.load() == 0);
}

BOOST_AUTO_TEST_CASE(arguments_of_a_task_run_inline_by_a_waiting_worker_are_destroyed_once,
                     *utf::timeout(60)) {
    {
        pypool::ThreadPool pool(1);  // the only worker waits: it runs the queued task itself
        auto outer = pool.apply_async([&pool] {
            auto inner = pool.apply_async([](LiveArg) { return 2; }, std::tuple{LiveArg{}});
            return inner.get() + 1;
        });
        BOOST_TEST(outer.get() == 3);
        pool.close();
        pool.join();  // the inner task's queue node was dropped too
        BOOST_TEST(LiveArg::count.load() == 0);
    }
    BOOST_TEST(LiveArg::count.load() == 0);
}

// ---- a result's value: destroyed exactly once on every path ----------------------------------
// (the state keeps it without a flag of its own: the outcome says whether it lives,
// detail/state.hpp)

using LiveValue = Live<1>;

BOOST_AUTO_TEST_CASE(a_value_lives_while_a_handle_does_and_is_destroyed_once, *utf::timeout(60)) {
    {
        pypool::ThreadPool pool(2);
        auto r = pool.apply_async([] { return LiveValue{}; });
        (void)r.get();
        auto copy = r;
        BOOST_TEST(LiveValue::count.load() == 1);  // one value, shared by both handles
        pool.close();
        pool.join();
        BOOST_TEST(LiveValue::count.load() == 1);  // the pool is gone, the handles are not
    }
    BOOST_TEST(LiveValue::count.load() == 0);
}

BOOST_AUTO_TEST_CASE(a_value_moved_out_by_get_is_destroyed_once, *utf::timeout(60)) {
    {
        pypool::ThreadPool pool(1);
        auto r = pool.apply_async([] { return LiveValue{}; });
        std::optional<LiveValue> taken;
        taken.emplace(std::move(r).get());
        BOOST_TEST(LiveValue::count.load() == 2);  // ours and the state's moved-from one
        taken.reset();
        BOOST_TEST(LiveValue::count.load() == 1);
    }
    BOOST_TEST(LiveValue::count.load() == 0);
}

BOOST_AUTO_TEST_CASE(the_value_of_a_result_whose_callback_throws_is_destroyed_once,
                     *utf::timeout(60)) {
    {
        pypool::ThreadPool pool(pypool::PoolOptions{.processes = 1,
                                                    .on_callback_error = [](std::exception_ptr) {}});
        auto r = pool.apply_async(
            [] { return LiveValue{}; }, std::tuple{},
            {.callback = [](const LiveValue&) { throw std::runtime_error("in callback"); }});
        BOOST_CHECK_THROW((void)r.get(), std::runtime_error);  // the error replaced the value
        auto m = pool.map_async([](int) { return LiveValue{}; }, std::vector<int>{1, 2, 3},
                                {.chunksize = 1, .callback = [](const std::vector<LiveValue>&) {
                                     throw std::runtime_error("in map callback");
                                 }});
        BOOST_CHECK_THROW((void)m.get(), std::runtime_error);
        BOOST_TEST(LiveValue::count.load() == 0);  // while the handles live
    }
    BOOST_TEST(LiveValue::count.load() == 0);
}

BOOST_AUTO_TEST_CASE(a_failed_or_cancelled_task_makes_no_value, *utf::timeout(60)) {
    {
        pypool::ThreadPool pool(1);
        Blocker b;
        auto running = pool.apply_async(b.task());
        auto failed = pool.apply_async([]() -> LiveValue { throw std::logic_error("no value"); });
        auto cancelled = pool.apply_async([] { return LiveValue{}; });
        b.started.wait();
        BOOST_TEST(cancelled.cancel());
        b.release.count_down();
        BOOST_CHECK_THROW((void)failed.get(), std::logic_error);
        BOOST_CHECK_THROW((void)cancelled.get(), pypool::CancelledError);
        running.get();
        BOOST_TEST(LiveValue::count.load() == 0);
        auto map_failed = pool.map_async(
            [](int v) {
                if (v == 2) throw std::logic_error("item 2");
                return LiveValue{};
            },
            std::vector<int>{1, 2, 3}, {.chunksize = 1});
        BOOST_CHECK_THROW((void)map_failed.get(), std::logic_error);
        BOOST_TEST(LiveValue::count.load() == 0);  // the items' values went with the map
    }
    BOOST_TEST(LiveValue::count.load() == 0);
}

// ---- a task nobody holds: its handle was dropped before a worker reached it ------------------
// (the worker then holds the only reference and completes it without read-modify-writes on the
// state: StateBase::alone(), detail/state.hpp)

BOOST_AUTO_TEST_CASE(a_task_whose_handle_was_dropped_destroys_its_arguments_and_value_once,
                     *utf::timeout(60)) {
    {
        pypool::ThreadPool pool(1);
        Blocker b;
        auto running = pool.apply_async(b.task());
        (void)pool.apply_async([](LiveArg) { return LiveValue{}; }, std::tuple{LiveArg{}});
        (void)pool.apply_async([](LiveArg) -> LiveValue { throw std::logic_error("x"); },
                               std::tuple{LiveArg{}});
        b.started.wait();
        BOOST_TEST(LiveArg::count.load() == 2);  // held by the two queued tasks
        b.release.count_down();
        running.get();
        pool.close();
        pool.join();
        BOOST_TEST(LiveArg::count.load() == 0);
        BOOST_TEST(LiveValue::count.load() == 0);
    }
    BOOST_TEST(LiveArg::count.load() == 0);
    BOOST_TEST(LiveValue::count.load() == 0);
}

BOOST_AUTO_TEST_CASE(a_task_whose_handle_was_dropped_is_counted_in_stats, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Blocker b;
    auto running = pool.apply_async(b.task());
    (void)pool.apply_async([] { return 1; });
    (void)pool.apply_async([] { return 2; });
    (void)pool.apply_async([]() -> int { throw std::logic_error("x"); });
    b.started.wait();
    b.release.count_down();
    running.get();
    pool.close();
    pool.join();
    const pypool::PoolStats s = pool.stats();
    BOOST_TEST(s.submitted == 4u);
    BOOST_TEST(s.completed == 3u);  // the blocker and the two that returned
    BOOST_TEST(s.failed == 1u);
    BOOST_TEST(s.queued == 0u);
    BOOST_TEST(s.running == 0u);
}

BOOST_AUTO_TEST_CASE(callbacks_of_a_task_whose_handle_was_dropped_still_run, *utf::timeout(60)) {
    std::latch called(3);  // the callback, the error_callback and the done callback
    {
        pypool::ThreadPool pool(1);
        Blocker b;
        auto running = pool.apply_async(b.task());
        (void)pool.apply_async([] { return 1; }, std::tuple{},
                               {.callback = [&called](const int&) { called.count_down(); }});
        (void)pool.apply_async([]() -> int { throw std::logic_error("x"); }, std::tuple{},
                               {.error_callback = [&called](std::exception_ptr) { called.count_down(); }});
        {
            auto r = pool.apply_async([] { return 3; });
            r.add_done_callback([&called](const pypool::AsyncResult<int>&) { called.count_down(); });
        }  // dropped before the task runs: the done callback keeps nothing alive but the state
        b.started.wait();
        b.release.count_down();
        running.get();
        pool.close();
        pool.join();  // the callbacks ran before join() returned
        BOOST_TEST(called.try_wait());
    }
    called.wait();
}
