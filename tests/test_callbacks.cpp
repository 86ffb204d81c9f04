// The callback thread: where and when callback/error_callback run, what they may do, and
// what happens when they throw.
#include <boost/test/unit_test.hpp>

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <pypool/pypool.hpp>

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using pypool::AsyncResult;

namespace {

std::string current_thread_name() {
    char buf[64] = {};
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    return buf;
}

// Spins (yielding) until cond() holds; fails the test after a generous bound. Used only
// to observe a state the library reaches by itself (not as a sleep).
template <class Cond>
void spin_until(Cond cond) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) {
            BOOST_FAIL("condition not reached");
        }
        std::this_thread::yield();
    }
}

std::string what_of(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "?";
    }
}

// Redirects the process's stderr (fd 2) into a temporary file while alive.
class StderrCapture {
public:
    StderrCapture() {
        std::fflush(stderr);
        file_ = std::tmpfile();
        saved_ = ::dup(2);
        ::dup2(::fileno(file_), 2);
    }
    ~StderrCapture() { restore(); }
    std::string finish() {
        restore();
        std::string out;
        std::rewind(file_);
        char buf[512];
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) out.append(buf, n);
        std::fclose(file_);
        file_ = nullptr;
        return out;
    }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;

private:
    void restore() {
        if (saved_ >= 0) {
            std::fflush(stderr);
            ::dup2(saved_, 2);
            ::close(saved_);
            saved_ = -1;
        }
    }
    std::FILE* file_ = nullptr;
    int saved_ = -1;
};

}  // namespace

// ---- where and in which order ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(callback_runs_on_the_loop_thread, *utf::timeout(60)) {
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .thread_name_prefix = "cbt"});
    std::string ok_name;
    std::string err_name;
    auto ok = pool.apply_async([] { return 1; }, std::tuple{},
                               {.callback = [&](const int&) { ok_name = current_thread_name(); }});
    auto bad = pool.apply_async([]() -> int { throw std::runtime_error("x"); }, std::tuple{},
                                {.error_callback = [&](std::exception_ptr) {
                                    err_name = current_thread_name();
                                }});
    ok.wait();
    bad.wait();
    BOOST_TEST(ok_name == "cbt-loop");
    BOOST_TEST(err_name == "cbt-loop");
}

BOOST_AUTO_TEST_CASE(void_task_callback_takes_no_argument, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    int calls = 0;
    pool.apply_async([] {}, std::tuple{}, {.callback = [&] { ++calls; }}).get();
    BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(callbacks_run_one_at_a_time, *utf::timeout(60)) {
    pypool::ThreadPool pool(4);
    std::atomic<bool> inside{false};
    std::atomic<int> overlaps{0};
    int calls = 0;  // touched only by callbacks: needs no lock
    std::vector<AsyncResult<int>> rs;
    for (int i = 0; i < 400; ++i) {
        rs.push_back(pool.apply_async([i] { return i; }, std::tuple{},
                                      {.callback = [&](const int&) {
                                          if (inside.exchange(true)) ++overlaps;
                                          for (int k = 0; k < 50; ++k) std::this_thread::yield();
                                          ++calls;
                                          inside = false;
                                      }}));
    }
    for (auto& r : rs) r.wait();
    BOOST_TEST(overlaps.load() == 0);
    BOOST_TEST(calls == 400);
}

BOOST_AUTO_TEST_CASE(callbacks_run_in_completion_order, *utf::timeout(60)) {
    pypool::ThreadPool pool(3);
    std::latch gate0(1), gate1(1), gate2(1);
    std::vector<int> order;  // callbacks only
    std::latch* gates[3] = {&gate0, &gate1, &gate2};
    std::vector<AsyncResult<int>> rs;
    for (int i = 0; i < 3; ++i) {
        rs.push_back(pool.apply_async(
            [g = gates[i], i] {
                g->wait();
                return i;
            },
            std::tuple{}, {.callback = [&](const int& v) { order.push_back(v); }}));
    }
    // Complete them in the order 2, 0, 1.
    gate2.count_down();
    rs[2].wait();
    gate0.count_down();
    rs[0].wait();
    gate1.count_down();
    rs[1].wait();
    BOOST_TEST(order == (std::vector<int>{2, 0, 1}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(callbacks_queued_behind_a_busy_loop_keep_completion_order,
                     *utf::timeout(60)) {
    // Worker 1 is held by task X; worker 2 runs everything else one by one. A marker task
    // without callbacks, run by worker 2 after a task, proves that task's callback was
    // queued. The loop is held meanwhile, so the callbacks queue up.
    pypool::ThreadPool pool(2);
    std::latch loop_started(1), loop_release(1), x_started(1), x_release(1);
    std::vector<std::string> order;  // callbacks only
    auto record = [&](std::string name) {
        return pypool::Callbacks<void>{.callback = [&order, name] { order.push_back(name); }};
    };
    auto holder = pool.apply_async([] {}, std::tuple{}, {.callback = [&] {
                                       loop_started.count_down();
                                       loop_release.wait();
                                   }});
    loop_started.wait();
    auto x = pool.apply_async([&] {
        x_started.count_down();
        x_release.wait();
    }, std::tuple{}, record("X"));
    x_started.wait();
    auto y = pool.apply_async([] {}, std::tuple{}, record("Y"));
    pool.apply_async([] {}).get();  // marker: Y's callback is queued
    auto z = pool.apply_async([] {}, std::tuple{}, record("Z"));
    pool.apply_async([] {}).get();  // marker: Z's callback is queued
    x_release.count_down();
    spin_until([&] { return pool.stats().running == 0U; });
    BOOST_TEST(!y.ready());  // all wait behind the held loop
    loop_release.count_down();
    x.wait();
    y.wait();
    z.wait();
    holder.wait();
    BOOST_TEST(order == (std::vector<std::string>{"Y", "Z", "X"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(result_is_ready_only_after_its_callback_returned, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::latch callback_started(1), callback_release(1);
    int side_effect = 0;  // plain int: get() must make the callback's write visible
    auto r = pool.apply_async([] { return 7; }, std::tuple{},
                              {.callback = [&](const int& v) {
                                  callback_started.count_down();
                                  callback_release.wait();
                                  side_effect = v;
                              }});
    callback_started.wait();
    BOOST_TEST(!r.ready());
    BOOST_TEST(!r.done());
    BOOST_TEST(!r.wait(10ms));
    callback_release.count_down();
    BOOST_TEST(r.get() == 7);
    BOOST_TEST(side_effect == 7);
}

BOOST_AUTO_TEST_CASE(result_with_error_callback_is_ready_after_it_returned, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::string seen;
    auto r = pool.apply_async([]() -> int { throw std::runtime_error("task failed"); },
                              std::tuple{}, {.error_callback = [&](std::exception_ptr e) {
                                  std::this_thread::sleep_for(5ms);  // lasts a while
                                  seen = what_of(e);
                              }});
    BOOST_CHECK_THROW((void)r.get(), std::runtime_error);
    BOOST_TEST(seen == "task failed");
}

BOOST_AUTO_TEST_CASE(error_callback_receives_the_task_exception, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::exception_ptr received;
    bool callback_called = false;
    auto r = pool.apply_async([]() -> int { throw std::invalid_argument("arg"); }, std::tuple{},
                              {.callback = [&](const int&) { callback_called = true; },
                               .error_callback = [&](std::exception_ptr e) { received = e; }});
    r.wait();
    BOOST_TEST(!callback_called);
    BOOST_REQUIRE(received);
    BOOST_TEST((received == r.exception()));  // the same stored exception
    BOOST_CHECK_THROW(std::rethrow_exception(received), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(error_callback_not_called_on_success, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    bool error_called = false;
    int value = 0;
    auto r = pool.apply_async([] { return 3; }, std::tuple{},
                              {.callback = [&](const int& v) { value = v; },
                               .error_callback = [&](std::exception_ptr) { error_called = true; }});
    r.wait();
    BOOST_TEST(value == 3);
    BOOST_TEST(!error_called);
}

BOOST_AUTO_TEST_CASE(callbacks_may_own_move_only_state_and_be_mutable, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto owned = std::make_unique<int>(40);
    int out = 0;
    pool.apply_async([] { return 2; }, std::tuple{},
                     {.callback = [p = std::move(owned), &out](const int& v) mutable {
                         *p += v;
                         out = *p;
                     }})
        .get();
    BOOST_TEST(out == 42);
}

// ---- follow-up work ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(callback_may_submit_follow_up_work, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::promise<AsyncResult<int>> follow_up;
    pool.apply_async([] { return 20; }, std::tuple{},
                     {.callback = [&](const int& v) {
                         follow_up.set_value(pool.apply_async([v] { return v + 1; }));
                     }})
        .get();
    BOOST_TEST(follow_up.get_future().get().get() == 21);
}

BOOST_AUTO_TEST_CASE(callback_may_submit_follow_up_work_after_close, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::latch release(1);
    std::atomic<bool> follow_up_ran{false};
    bool follow_up_callback_ran = false;  // callbacks only; read after join()
    bool rejected = false;
    auto r = pool.apply_async([&] { release.wait(); }, std::tuple{},
                              {.callback = [&] {
                                  try {
                                      pool.apply_async([&] { follow_up_ran = true; }, std::tuple{},
                                                       {.callback = [&] {
                                                           follow_up_callback_ran = true;
                                                       }});
                                  } catch (const pypool::ValueError&) {
                                      rejected = true;
                                  }
                              }});
    pool.close();
    BOOST_CHECK_THROW(pool.apply_async([] {}), pypool::ValueError);  // from outside: refused
    release.count_down();
    pool.join();  // waits for the follow-up and its callback too
    BOOST_TEST(!rejected);
    BOOST_TEST(follow_up_ran.load());
    BOOST_TEST(follow_up_callback_ran);
}

BOOST_AUTO_TEST_CASE(follow_up_chain_from_callbacks_runs_to_the_end_before_join_returns,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    int depth = 0;  // callbacks only
    auto chain = [&](auto&& self, int v) -> void {
        pool.apply_async([v] { return v + 1; }, std::tuple{}, {.callback = [&, self](const int& w) {
                                                                 depth = w;
                                                                 if (w < 50) self(self, w);
                                                             }});
    };
    chain(chain, 0);
    pool.close();
    pool.join();
    BOOST_TEST(depth == 50);
}

// ---- waits on the callback thread ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(blocking_waits_on_the_loop_for_a_result_with_callback_throw_deadlock_error,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::latch release(1);
    auto pending = pool.apply_async([&] {
        release.wait();
        return 1;
    }, std::tuple{}, {.callback = [](const int&) {}});
    std::vector<std::string> outcomes;
    auto probe = [&](const char* what, auto&& fn) {
        try {
            fn();
            outcomes.push_back(std::string(what) + ": returned");
        } catch (const pypool::DeadlockError&) {
            outcomes.push_back(std::string(what) + ": deadlock");
        } catch (...) {
            outcomes.push_back(std::string(what) + ": other");
        }
    };
    pool.apply_async([] {}, std::tuple{}, {.callback = [&] {
                         probe("get", [&] { (void)pending.get(); });
                         probe("get(1h)", [&] { (void)pending.get(1h); });
                         probe("wait", [&] { pending.wait(); });
                         probe("wait(1h)", [&] { (void)pending.wait(1h); });
                         probe("result", [&] { (void)pending.result(); });
                         probe("exception", [&] { (void)pending.exception(); });
                         probe("exception(1h)", [&] { (void)pending.exception(1h); });
                     }})
        .get();
    release.count_down();
    BOOST_TEST(pending.get() == 1);
    const std::vector<std::string> expected{
        "get: deadlock",    "get(1h): deadlock",   "wait: deadlock",       "wait(1h): deadlock",
        "result: deadlock", "exception: deadlock", "exception(1h): deadlock"};
    BOOST_TEST(outcomes == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(error_callback_alone_also_makes_loop_waits_deadlock_errors,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::latch release(1);
    auto pending = pool.apply_async([&] { release.wait(); }, std::tuple{},
                                    {.error_callback = [](std::exception_ptr) {}});
    bool deadlock = false;
    pool.apply_async([] {}, std::tuple{}, {.callback = [&] {
                         try {
                             pending.wait();
                         } catch (const pypool::DeadlockError&) {
                             deadlock = true;
                         }
                     }})
        .get();
    release.count_down();
    pending.get();
    BOOST_TEST(deadlock);
}

BOOST_AUTO_TEST_CASE(zero_timeout_wait_on_the_loop_only_checks, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::latch release(1);
    auto pending = pool.apply_async([&] {
        release.wait();
        return 1;
    }, std::tuple{}, {.callback = [](const int&) {}});
    bool waited = true;
    bool timed_out = false;
    pool.apply_async([] {}, std::tuple{}, {.callback = [&] {
                         waited = pending.wait(0s);
                         try {
                             (void)pending.get(0s);
                         } catch (const pypool::TimeoutError&) {
                             timed_out = true;
                         }
                     }})
        .get();
    release.count_down();
    pending.get();
    BOOST_TEST(!waited);
    BOOST_TEST(timed_out);
}

BOOST_AUTO_TEST_CASE(loop_may_wait_on_a_result_without_callbacks, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::latch release(1);
    auto plain = pool.apply_async([&] {
        release.wait();
        return 9;
    });
    int seen = 0;
    pool.apply_async([] {}, std::tuple{}, {.callback = [&] {
                         release.count_down();  // the plain task can finish on its own
                         seen = plain.get();
                     }})
        .get();
    BOOST_TEST(seen == 9);
}

BOOST_AUTO_TEST_CASE(loop_may_wait_on_a_ready_result_with_callback, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    auto done = pool.apply_async([] { return 4; }, std::tuple{}, {.callback = [](const int&) {}});
    done.wait();
    int seen = 0;
    pool.apply_async([] {}, std::tuple{}, {.callback = [&] { seen = done.get(); }}).get();
    BOOST_TEST(seen == 4);
}

BOOST_AUTO_TEST_CASE(loop_waits_on_another_pools_result_with_callback_are_allowed,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pypool::ThreadPool other(1);
    std::latch release(1);
    auto foreign = other.apply_async([&] {
        release.wait();
        return 5;
    }, std::tuple{}, {.callback = [](const int&) {}});
    int seen = 0;
    pool.apply_async([] {}, std::tuple{}, {.callback = [&] {
                         release.count_down();
                         seen = foreign.get();  // the other pool's loop runs its callback
                     }})
        .get();
    BOOST_TEST(seen == 5);
}

BOOST_AUTO_TEST_CASE(join_on_the_loop_while_running_throws_value_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::string message;
    pool.apply_async([] {}, std::tuple{}, {.callback = [&] {
                         try {
                             pool.join();
                         } catch (const pypool::ValueError& e) {
                             message = e.what();
                         }
                     }})
        .get();
    BOOST_TEST(message == "Pool is still running");
}

BOOST_AUTO_TEST_CASE(join_on_the_loop_after_close_throws_deadlock_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::latch release(1);
    bool deadlock = false;
    auto r = pool.apply_async([&] { release.wait(); }, std::tuple{}, {.callback = [&] {
                                  try {
                                      pool.join();
                                  } catch (const pypool::DeadlockError&) {
                                      deadlock = true;
                                  }
                              }});
    pool.close();
    release.count_down();
    pool.join();
    BOOST_TEST(deadlock);
}

// ---- throwing callbacks ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(throwing_callback_fails_the_job_with_its_exception, *utf::timeout(60)) {
    std::mutex m;
    std::vector<std::string> told;
    std::vector<std::string> told_on;
    pypool::ThreadPool pool(pypool::PoolOptions{
        .processes = 1, .thread_name_prefix = "thr", .on_callback_error = [&](std::exception_ptr e) {
            std::lock_guard lk(m);
            told.push_back(what_of(e));
            told_on.push_back(current_thread_name());
        }});
    bool error_callback_called = false;
    auto r = pool.apply_async([] { return 1; }, std::tuple{},
                              {.callback = [](const int&) { throw std::runtime_error("in callback"); },
                               .error_callback = [&](std::exception_ptr) {
                                   error_callback_called = true;
                               }});
    try {
        (void)r.get();
        BOOST_FAIL("get() did not rethrow");
    } catch (const std::runtime_error& e) {
        BOOST_TEST(std::string(e.what()) == "in callback");
    }
    BOOST_TEST(!r.successful());
    BOOST_TEST(!error_callback_called);
    BOOST_CHECK_THROW(std::rethrow_exception(r.exception()), std::runtime_error);
    std::lock_guard lk(m);
    BOOST_TEST(told == std::vector<std::string>{"in callback"}, boost::test_tools::per_element());
    BOOST_TEST(told_on == std::vector<std::string>{"thr-loop"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(throwing_error_callback_fails_the_job_with_its_exception,
                     *utf::timeout(60)) {
    std::atomic<int> told{0};
    pypool::ThreadPool pool(pypool::PoolOptions{
        .processes = 1, .on_callback_error = [&](std::exception_ptr) { ++told; }});
    auto r = pool.apply_async([]() -> int { throw std::runtime_error("task"); }, std::tuple{},
                              {.error_callback = [](std::exception_ptr) { throw 7; }});
    try {
        (void)r.get();
        BOOST_FAIL("get() did not rethrow");
    } catch (int v) {
        BOOST_TEST(v == 7);
    }
    BOOST_TEST(!r.successful());
    BOOST_TEST(told.load() == 1);
}

BOOST_AUTO_TEST_CASE(pool_carries_on_after_a_throwing_callback, *utf::timeout(60)) {
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2,
                                                .on_callback_error = [](std::exception_ptr) {}});
    for (int round = 0; round < 3; ++round) {
        auto bad = pool.apply_async([] { return 0; }, std::tuple{},
                                    {.callback = [](const int&) { throw std::logic_error("x"); }});
        BOOST_CHECK_THROW((void)bad.get(), std::logic_error);
    }
    int value = 0;
    auto good = pool.apply_async([] { return 5; }, std::tuple{},
                                 {.callback = [&](const int& v) { value = v; }});
    BOOST_TEST(good.get() == 5);
    BOOST_TEST(value == 5);
    BOOST_TEST(pool.apply([] { return 6; }) == 6);
    pool.close();
    pool.join();
}

BOOST_AUTO_TEST_CASE(throwing_callback_without_handler_prints_one_line_to_stderr,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::string captured;
    {
        StderrCapture capture;
        auto r = pool.apply_async([] { return 1; }, std::tuple{},
                                  {.callback = [](const int&) { throw std::runtime_error("loud"); }});
        BOOST_CHECK_THROW((void)r.get(), std::runtime_error);  // reported before ready
        captured = capture.finish();
    }
    BOOST_TEST(std::count(captured.begin(), captured.end(), '\n') == 1);
    BOOST_TEST(captured.find("loud") != std::string::npos);
    BOOST_TEST(pool.apply([] { return 2; }) == 2);
}

BOOST_AUTO_TEST_CASE(throwing_non_std_exception_callback_without_handler_does_not_crash,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::string captured;
    {
        StderrCapture capture;
        auto r = pool.apply_async([] {}, std::tuple{}, {.callback = [] { throw 3.5; }});
        BOOST_CHECK_THROW(r.get(), double);
        captured = capture.finish();
    }
    BOOST_TEST(std::count(captured.begin(), captured.end(), '\n') == 1);
}

BOOST_AUTO_TEST_CASE(throwing_on_callback_error_is_contained, *utf::timeout(60)) {
    pypool::ThreadPool pool(pypool::PoolOptions{
        .processes = 1, .on_callback_error = [](std::exception_ptr) { throw 1; }});
    StderrCapture capture;
    auto r = pool.apply_async([] {}, std::tuple{}, {.callback = [] { throw 2; }});
    BOOST_CHECK_THROW(r.get(), int);
    (void)capture.finish();
    BOOST_TEST(pool.apply([] { return 3; }) == 3);
}

BOOST_AUTO_TEST_CASE(throwing_done_callback_leaves_the_result_alone, *utf::timeout(60)) {
    std::promise<std::string> told;
    pypool::ThreadPool pool(pypool::PoolOptions{
        .processes = 1,
        .on_callback_error = [&](std::exception_ptr e) { told.set_value(what_of(e)); }});
    auto r = pool.apply_async([] { return 8; });
    r.add_done_callback([](const AsyncResult<int>&) { throw std::runtime_error("done cb"); });
    BOOST_TEST(told.get_future().get() == "done cb");
    BOOST_TEST(r.get() == 8);
    BOOST_TEST(r.successful());
}

// ---- lifecycle from a callback ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(terminate_from_a_callback_works, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::latch started(1), release(1);
    auto busy = pool.apply_async([&] {
        started.count_down();
        release.wait();
    });
    std::vector<AsyncResult<int>> queued;
    for (int i = 0; i < 5; ++i) queued.push_back(pool.apply_async([i] { return i; }));
    // The trigger's error_callback runs on the loop while the only worker is still busy
    // (cancelling a queued task with an error_callback needs no worker).
    auto trigger = pool.apply_async([] {}, std::tuple{},
                                    {.error_callback = [&](std::exception_ptr) { pool.terminate(); }});
    started.wait();
    BOOST_TEST(trigger.cancel());
    BOOST_CHECK_THROW(trigger.get(), pypool::CancelledError);  // its error_callback has run
    for (auto& q : queued) {
        BOOST_TEST(q.cancelled());
        BOOST_CHECK_THROW((void)q.get(), pypool::CancelledError);
    }
    BOOST_CHECK_THROW(pool.apply_async([] {}), pypool::ValueError);
    release.count_down();
    pool.join();
    BOOST_TEST(busy.successful());
}

BOOST_AUTO_TEST_CASE(close_from_a_callback_works, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.apply_async([] {}, std::tuple{}, {.callback = [&] { pool.close(); }}).get();
    BOOST_CHECK_THROW(pool.apply_async([] {}), pypool::ValueError);
    pool.join();
}

// Issue 11 item 7: every completion that needs the callback thread (a task's, a map's, a
// cancellation's with an error_callback, one run inline by a waiting worker) takes the
// same path there, so callbacks run in completion order. X's callback holds the loop until
// D (no callback, queued last on the one worker) starts: by then the others completed.
namespace {
struct OrderProbe {
    std::vector<std::string> order;  // touched on the callback thread only
    std::promise<void> d_started_p;
    std::shared_future<void> d_started = d_started_p.get_future().share();
    pypool::Callbacks<int> named(const char* name) {
        return {.callback = [this, name](const int&) { order.emplace_back(name); },
                .error_callback = [this, name](std::exception_ptr) { order.emplace_back(name); }};
    }
    std::promise<void> x_running_p;
    pypool::Callbacks<int> holding_x() {
        return {.callback = [this](const int&) {
            order.emplace_back("X");
            x_running_p.set_value();
            (void)d_started.wait_for(10s);
        }};
    }
};
}  // namespace

BOOST_AUTO_TEST_CASE(a_map_completion_gets_its_callback_in_completion_order, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    OrderProbe p;
    auto x = pool.apply_async([] { return 0; }, std::tuple{}, p.holding_x());
    auto m = pool.map_async([](int v) { return v; }, std::vector<int>{1, 2},
                            {.chunksize = 2, .callback = [&](const std::vector<int>&) {
                                 p.order.emplace_back("M");
                             }});
    auto b = pool.apply_async([] { return 0; }, std::tuple{}, p.named("B"));
    auto d = pool.apply_async([&] { p.d_started_p.set_value(); });
    (void)m.get();
    (void)b.get();
    d.get();
    pool.close();
    pool.join();
    BOOST_TEST((p.order == std::vector<std::string>{"X", "M", "B"}));
}

BOOST_AUTO_TEST_CASE(a_cancellation_gets_its_error_callback_in_completion_order,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    OrderProbe p;
    std::promise<void> release_k;
    std::shared_future<void> k_gate = release_k.get_future().share();
    auto x = pool.apply_async([] { return 0; }, std::tuple{}, p.holding_x());
    auto k = pool.apply_async([k_gate] { (void)k_gate.wait_for(10s); });
    auto c = pool.apply_async([] { return 0; }, std::tuple{}, p.named("C"));
    auto b = pool.apply_async([] { return 0; }, std::tuple{}, p.named("B"));
    auto d = pool.apply_async([&] { p.d_started_p.set_value(); });
    p.x_running_p.get_future().wait();  // X completed first
    BOOST_TEST(c.cancel());
    release_k.set_value();
    (void)b.get();
    d.get();
    pool.close();
    pool.join();
    BOOST_TEST((p.order == std::vector<std::string>{"X", "C", "B"}));
}

BOOST_AUTO_TEST_CASE(a_task_run_inline_by_a_waiting_worker_gets_its_callback_in_order,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    OrderProbe p;
    auto x = pool.apply_async([] { return 0; }, std::tuple{}, p.holding_x());
    auto w = pool.apply_async([&] {
        auto s = pool.apply_async([] { return 0; }, std::tuple{}, p.named("S"));
        std::vector<AsyncResult<void>> fillers;  // S is no longer among the newest jobs:
        for (int i = 0; i < 9; ++i) fillers.push_back(pool.apply_async([] {}));  // claimed
        return s.get();  // runs S here (its node stays queued), then waits for its callback
    });
    auto b = pool.apply_async([] { return 0; }, std::tuple{}, p.named("B"));  // on a spare
    auto d = pool.apply_async([&] { p.d_started_p.set_value(); });
    (void)w.get();
    (void)b.get();
    d.get();
    pool.close();
    pool.join();
    BOOST_TEST((p.order == std::vector<std::string>{"X", "S", "B"}));
}

// Issue 11 item 8: a callback waits (no timeout) for T, which has no callback; T waits for
// R, whose callback is queued behind the waiting callback. Nobody can go on: the callback's
// wait throws DeadlockError (the cycle is caught whichever wait or completion closes it),
// and then everything finishes.
namespace {
std::string wait_in_a_callback_for_a_task_waiting_on(bool r_has_callback) {
    pypool::ThreadPool pool(2);
    std::promise<void> release_r_p;
    std::shared_future<void> release_r = release_r_p.get_future().share();
    std::atomic<bool> r_callback_ran{false};
    pypool::Callbacks<int> r_cbs;
    if (r_has_callback) r_cbs.callback = [&](const int&) { r_callback_ran = true; };
    auto r = pool.apply_async([release_r] {
        (void)release_r.wait_for(10s);
        return 5;
    }, std::tuple{}, std::move(r_cbs));
    auto t = pool.apply_async([r] { return r.get() + 1; });  // blocks on R on a worker
    std::promise<void> in_callback_p;
    std::promise<std::string> outcome;
    auto x = pool.apply_async([] { return 0; }, std::tuple{}, {.callback = [&](const int&) {
        in_callback_p.set_value();
        try {
            outcome.set_value(t.get() == 6 ? "returned" : "wrong value");
        } catch (const pypool::DeadlockError&) {
            outcome.set_value("deadlock");
        }
    }});
    in_callback_p.get_future().wait();  // X's callback runs: R's callback will queue behind
    release_r_p.set_value();
    auto f = outcome.get_future();
    if (f.wait_for(20s) != std::future_status::ready) {
        std::fputs("hang: the cycle through the callback thread was not caught\n", stderr);
        std::abort();  // unreachable when fixed; a hang cannot be cleaned up
    }
    std::string result = f.get();
    BOOST_TEST(t.get() == 6);  // everything finishes once the callback's wait gave up
    BOOST_TEST(r_callback_ran.load() == r_has_callback);
    pool.close();
    pool.join();
    return result;
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_callback_waiting_on_a_task_that_waits_for_a_queued_callback_throws_deadlock_error,
                     *utf::timeout(60)) {
    BOOST_TEST(wait_in_a_callback_for_a_task_waiting_on(true) == "deadlock");
}

BOOST_AUTO_TEST_CASE(a_callback_waiting_on_a_task_that_waits_for_a_result_without_callback_works,
                     *utf::timeout(60)) {
    BOOST_TEST(wait_in_a_callback_for_a_task_waiting_on(false) == "returned");
}
