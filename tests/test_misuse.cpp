// Misuse and bad input (issue 6): one case per row of docs/ERRORS.md, named after the row,
// checking the exception type and its exact message (or, for destroying a pool on its own
// thread, the message on stderr and the abnormal exit of a child process).
#include <utility>  // before Asio (see TOOLCHAIN.md)

#include <boost/asio/post.hpp>
#include <boost/test/unit_test.hpp>

#include <pypool/asio.hpp>
#include <pypool/pypool.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <exception>
#include <future>
#include <latch>
#include <limits>
#include <optional>
#include <ratio>
#include <string>
#include <tuple>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {
using namespace std::chrono_literals;

/// what() of the E that fn throws; "<no exception>" or "<other: ...>" otherwise.
template <class E, class F>
std::string what_of(F&& fn) {
    try {
        fn();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("<other: ") + e.what() + ">";
    } catch (...) {
        return "<other: not a std::exception>";
    }
    return "<no exception>";
}

const std::string not_running = "Pool not running";
const std::string after_shutdown = "cannot schedule new futures after shutdown";
const std::string no_state = "AsyncResult has no state";
const std::string callback_deadlock =
    "waiting on the pool's callback thread for a result that has a callback would never "
    "finish: its callback needs this thread";

int twice(int x) { return 2 * x; }

/// Every submitting method, each throwing E with message msg.
template <class E>
void check_every_submitting_method_throws(pypool::ThreadPool& pool, const std::string& msg) {
    const std::vector<int> xs{1, 2, 3};
    const std::vector<std::tuple<int>> ts{{1}, {2}};
    BOOST_TEST(what_of<E>([&] { (void)pool.apply(twice, std::tuple{1}); }) == msg);
    BOOST_TEST(what_of<E>([&] { (void)pool.apply_async(twice, std::tuple{1}); }) == msg);
    BOOST_TEST(what_of<E>([&] { (void)pool.submit(twice, 1); }) == msg);
    BOOST_TEST(what_of<E>([&] { (void)pool.map(twice, xs); }) == msg);
    BOOST_TEST(what_of<E>([&] { (void)pool.map_async(twice, xs); }) == msg);
    BOOST_TEST(what_of<E>([&] { (void)pool.starmap(twice, ts); }) == msg);
    BOOST_TEST(what_of<E>([&] { (void)pool.starmap_async(twice, ts); }) == msg);
    BOOST_TEST(what_of<E>([&] { (void)pool.imap(twice, xs); }) == msg);
    BOOST_TEST(what_of<E>([&] { (void)pool.imap_unordered(twice, xs); }) == msg);
    BOOST_TEST(what_of<E>([&] {
                   pypool::async_apply(pool, twice, std::tuple{1}, [](std::exception_ptr, int) {});
               }) == msg);
}

}  // namespace

// ---- submitting to a stopped pool ---------------------------------------------------------------

BOOST_AUTO_TEST_CASE(submit_after_close_throws_value_error_pool_not_running,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    pool.close();
    check_every_submitting_method_throws<pypool::ValueError>(pool, not_running);
    pool.join();
    check_every_submitting_method_throws<pypool::ValueError>(pool, not_running);
    BOOST_TEST(pool.stats().submitted == 0u);
}

BOOST_AUTO_TEST_CASE(submit_after_terminate_throws_value_error_pool_not_running,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    pool.terminate();
    check_every_submitting_method_throws<pypool::ValueError>(pool, not_running);
    pool.join();
    check_every_submitting_method_throws<pypool::ValueError>(pool, not_running);
}

BOOST_AUTO_TEST_CASE(submit_after_shutdown_throws_runtime_error_cannot_schedule_new_futures,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    pool.shutdown(false);
    check_every_submitting_method_throws<pypool::RuntimeError>(pool, after_shutdown);
    pool.shutdown();
    check_every_submitting_method_throws<pypool::RuntimeError>(pool, after_shutdown);
}

BOOST_AUTO_TEST_CASE(the_first_stop_decides_the_error, *boost::unit_test::timeout(60)) {
    auto submit_error = [](pypool::ThreadPool& p) {
        try {
            (void)p.submit(twice, 1);
        } catch (const pypool::RuntimeError& e) {
            return std::string("RuntimeError: ") + e.what();
        } catch (const pypool::ValueError& e) {
            return std::string("ValueError: ") + e.what();
        }
        return std::string("accepted");
    };
    {
        pypool::ThreadPool p(1);
        p.close();
        p.shutdown();
        BOOST_TEST(submit_error(p) == "ValueError: " + not_running);
    }
    {
        pypool::ThreadPool p(1);
        p.terminate();
        p.shutdown();
        BOOST_TEST(submit_error(p) == "ValueError: " + not_running);
    }
    {
        pypool::ThreadPool p(1);
        p.shutdown(false);
        p.terminate();
        BOOST_TEST(submit_error(p) == "RuntimeError: " + after_shutdown);
        p.join();
    }
    {
        pypool::ThreadPool p(1);
        p.shutdown(false);
        p.close();
        p.join();
        BOOST_TEST(submit_error(p) == "RuntimeError: " + after_shutdown);
    }
}

BOOST_AUTO_TEST_CASE(submit_from_inside_the_pool_after_terminate_throws_value_error,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::latch started(1), terminated(1);
    auto r = pool.submit([&] {
        started.count_down();
        terminated.wait();
        return what_of<pypool::ValueError>([&] { (void)pool.submit(twice, 1); });
    });
    started.wait();  // running, so terminate() does not cancel it
    pool.terminate();
    terminated.count_down();
    BOOST_TEST(r.get() == not_running);
    pool.join();
}

// ---- join and shutdown ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(join_while_running_throws_value_error_pool_is_still_running,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(1);
    BOOST_TEST(what_of<pypool::ValueError>([&] { pool.join(); }) == "Pool is still running");
    // also from a worker or the callback thread: the state is checked first
    BOOST_TEST(pool.submit([&] { return what_of<pypool::ValueError>([&] { pool.join(); }); }).get() ==
               "Pool is still running");
    std::promise<std::string> from_cb;
    pool.apply_async(twice, std::tuple{1}, {.callback = [&](const int&) {
                         from_cb.set_value(what_of<pypool::ValueError>([&] { pool.join(); }));
                     }});
    BOOST_TEST(from_cb.get_future().get() == "Pool is still running");
    BOOST_TEST(pool.apply(twice, std::tuple{2}) == 4);  // still running
}

BOOST_AUTO_TEST_CASE(join_or_shutdown_wait_from_a_worker_throws_deadlock_error,
                     *boost::unit_test::timeout(60)) {
    const std::string msg = "join() on a worker of the same pool would wait for itself";
    {
        pypool::ThreadPool pool(2);
        auto r = pool.submit([&] {
            pool.close();
            return what_of<pypool::DeadlockError>([&] { pool.join(); });
        });
        BOOST_TEST(r.get() == msg);
        pool.join();  // from outside: fine
    }
    {
        pypool::ThreadPool pool(2);
        auto r = pool.submit([&] { return what_of<pypool::DeadlockError>([&] { pool.shutdown(true); }); });
        BOOST_TEST(r.get() == msg);
        BOOST_TEST(what_of<pypool::RuntimeError>([&] { (void)pool.submit(twice, 1); }) == after_shutdown);
        pool.shutdown();
    }
}

BOOST_AUTO_TEST_CASE(join_or_shutdown_wait_from_the_callback_thread_throws_deadlock_error,
                     *boost::unit_test::timeout(60)) {
    const std::string msg = "join() on the pool's callback thread would wait for itself";
    {
        pypool::ThreadPool pool(1);
        std::string got;
        auto r = pool.apply_async(twice, std::tuple{1}, {.callback = [&](const int&) {
                                      pool.close();
                                      got = what_of<pypool::DeadlockError>([&] { pool.join(); });
                                  }});
        r.wait();
        BOOST_TEST(got == msg);
        pool.join();
    }
    {
        pypool::ThreadPool pool(1);
        std::string got;
        auto r = pool.apply_async(twice, std::tuple{1}, {.callback = [&](const int&) {
                                      got = what_of<pypool::DeadlockError>([&] { pool.shutdown(); });
                                  }});
        r.wait();
        BOOST_TEST(got == msg);
        pool.shutdown();
    }
}

BOOST_AUTO_TEST_CASE(blocking_wait_on_the_callback_thread_for_a_result_with_a_callback_throws_deadlock_error,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(3);  // two blocked by the gate, one for the task whose callback waits
    auto plain = pool.submit([] { return 3; });
    plain.wait();
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto with_cb = pool.apply_async([gate] { gate.wait(); return 1; }, std::tuple{},
                                    {.callback = [](const int&) {}});
    auto map_cb = pool.map_async([gate](int i) { gate.wait(); return i; }, std::vector{1},
                                 {.error_callback = [](std::exception_ptr) {}});
    std::vector<std::string> got;
    std::optional<bool> zero_wait;
    std::string zero_get;
    int plain_value = 0;
    auto r = pool.apply_async(twice, std::tuple{1}, {.callback = [&](const int&) {
        using DE = pypool::DeadlockError;
        got.push_back(what_of<DE>([&] { (void)with_cb.get(); }));
        got.push_back(what_of<DE>([&] { with_cb.wait(); }));
        got.push_back(what_of<DE>([&] { (void)with_cb.result(); }));
        got.push_back(what_of<DE>([&] { (void)with_cb.exception(); }));
        got.push_back(what_of<DE>([&] { (void)with_cb.get(1s); }));
        got.push_back(what_of<DE>([&] { (void)with_cb.wait(1s); }));
        got.push_back(what_of<DE>([&] { (void)map_cb.get(); }));
        got.push_back(what_of<DE>([&] { (void)pypool::wait({with_cb}); }));
        got.push_back(what_of<DE>([&] { for (auto& x : pypool::as_completed({with_cb})) (void)x; }));
        // a zero timeout only checks; a result without callbacks may be waited for
        zero_wait = with_cb.wait(0s);
        zero_get = what_of<pypool::TimeoutError>([&] { (void)with_cb.get(0s); });
        plain_value = plain.get();
    }});
    r.wait();
    BOOST_TEST(got.size() == 9u);
    for (const auto& g : got) BOOST_TEST(g == callback_deadlock);
    BOOST_TEST((zero_wait.has_value() && !*zero_wait));
    BOOST_TEST(zero_get == "result not ready within the timeout");
    BOOST_TEST(plain_value == 3);
    go.set_value();
    BOOST_TEST(with_cb.get() == 1);  // nothing was lost
    BOOST_TEST(map_cb.get() == std::vector{1});
    pool.close();
    pool.join();
}

// ---- bad arguments -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(imap_chunksize_zero_throws_value_error, *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    const std::vector<int> xs{1, 2, 3};
    const std::string msg = "Chunksize must be 1+, not 0";
    BOOST_TEST(what_of<pypool::ValueError>([&] { (void)pool.imap(twice, xs, 0); }) == msg);
    BOOST_TEST(what_of<pypool::ValueError>([&] { (void)pool.imap_unordered(twice, xs, 0); }) == msg);
    BOOST_TEST(what_of<pypool::ValueError>([&] {
                   (void)pool.imap(twice, xs, pypool::IMapOptions{.chunksize = 0});
               }) == msg);
    BOOST_TEST(what_of<pypool::ValueError>([&] { (void)pool.imap(twice, {1, 2}, 0); }) == msg);
    BOOST_TEST(pool.stats().submitted == 0u);
}

BOOST_AUTO_TEST_CASE(imap_with_braced_empty_options_picks_chunksize_zero_and_throws_value_error,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    const std::vector<int> xs{1, 2, 3};
    const std::string msg = "Chunksize must be 1+, not 0";
    BOOST_TEST(what_of<pypool::ValueError>([&] { (void)pool.imap(twice, xs, {}); }) == msg);
    BOOST_TEST(what_of<pypool::ValueError>([&] { (void)pool.imap_unordered(twice, xs, {}); }) == msg);
    // the fix: name the type
    int sum = 0;
    for (int v : pool.imap(twice, xs, pypool::IMapOptions{})) sum += v;
    BOOST_TEST(sum == 12);
}

BOOST_AUTO_TEST_CASE(map_chunksize_zero_uses_pythons_default_rule, *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::vector<int> xs;
    for (int i = 0; i < 50; ++i) xs.push_back(i);
    const auto out = pool.map(twice, xs, 0);
    BOOST_REQUIRE(out.size() == 50u);
    BOOST_TEST(out[49] == 98);
    const auto before = pool.stats().submitted;
    auto m = pool.map_async(twice, xs, {.chunksize = 0});
    BOOST_TEST(m.get().size() == 50u);
    // Python's rule: ceil(50 / (4 * 2)) = 7 items per chunk, so 8 chunks
    BOOST_TEST(pool.stats().submitted - before == 8u);
    std::vector<std::tuple<int>> ts{{1}, {2}};
    BOOST_TEST(pool.starmap(twice, ts, 0) == (std::vector{2, 4}));
}

BOOST_AUTO_TEST_CASE(thread_pool_with_zero_or_negative_processes_throws_value_error,
                     *boost::unit_test::timeout(60)) {
    const std::string msg = "Number of processes must be at least 1";
    BOOST_TEST(what_of<pypool::ValueError>([] { pypool::ThreadPool p(0); }) == msg);
    BOOST_TEST(what_of<pypool::ValueError>([] { pypool::ThreadPool p(-3); }) == msg);
    BOOST_TEST(what_of<pypool::ValueError>([] { pypool::ThreadPool p(pypool::PoolOptions{.processes = 0}); }) == msg);
    BOOST_TEST(what_of<pypool::ValueError>([] { pypool::ThreadPool p(pypool::PoolOptions{.processes = -1}); }) == msg);
}

// ---- results --------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(successful_before_ready_throws_value_error_not_ready, *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto r = pool.submit([gate] { gate.wait(); return 1; });
    BOOST_TEST(what_of<pypool::ValueError>([&] { (void)r.successful(); }) == "AsyncResult not ready");
    go.set_value();
    r.wait();
    BOOST_TEST(r.successful());
}

BOOST_AUTO_TEST_CASE(get_on_a_cancelled_result_throws_cancelled_error, *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto blocker = pool.submit([gate] { gate.wait(); });
    auto r = pool.submit(twice, 1);
    auto t = pool.submit(twice, 2);
    BOOST_TEST(r.cancel());
    const std::string msg = "task was cancelled";
    BOOST_TEST(what_of<pypool::CancelledError>([&] { (void)r.get(); }) == msg);
    BOOST_TEST(what_of<pypool::CancelledError>([&] { (void)r.result(1s); }) == msg);
    BOOST_TEST(what_of<pypool::CancelledError>([&] { (void)r.exception(); }) == msg);
    BOOST_TEST(what_of<pypool::CancelledError>([&] { (void)std::move(r).get(); }) == msg);
    BOOST_TEST(!r.successful());
    pool.terminate();  // t: cancelled by terminate()
    BOOST_TEST(what_of<pypool::CancelledError>([&] { (void)t.get(); }) == msg);
    go.set_value();
    pool.join();
}

BOOST_AUTO_TEST_CASE(get_with_a_timeout_that_passes_throws_timeout_error, *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto r = pool.submit([gate] { gate.wait(); return 5; });
    const std::string msg = "result not ready within the timeout";
    BOOST_TEST(what_of<pypool::TimeoutError>([&] { (void)r.get(10ms); }) == msg);
    BOOST_TEST(what_of<pypool::TimeoutError>([&] { (void)r.get(0s); }) == msg);
    BOOST_TEST(what_of<pypool::TimeoutError>([&] { (void)r.result(-1s); }) == msg);
    BOOST_TEST(what_of<pypool::TimeoutError>([&] { (void)r.exception(10ms); }) == msg);
    BOOST_TEST(what_of<pypool::TimeoutError>([&] { (void)pypool::AsyncResult<int>(r).get(1ms); }) == msg);
    BOOST_TEST(!r.wait(10ms));  // wait(timeout) reports instead of throwing
    go.set_value();
    BOOST_TEST(r.get(60s) == 5);  // the result is not lost
}

BOOST_AUTO_TEST_CASE(imap_next_with_a_timeout_that_passes_throws_timeout_error,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto it = pool.imap([gate](int i) { gate.wait(); return i; }, std::vector{7, 8});
    const std::string msg = "no imap result arrived within the timeout";
    BOOST_TEST(what_of<pypool::TimeoutError>([&] { (void)it.next(10ms); }) == msg);
    BOOST_TEST(what_of<pypool::TimeoutError>([&] { (void)it.next(0s); }) == msg);
    go.set_value();
    BOOST_TEST(it.next(60s).value() == 7);  // nothing was lost
    BOOST_TEST(it.next().value() == 8);
    BOOST_TEST(!it.next().has_value());
}

BOOST_AUTO_TEST_CASE(imap_after_terminate_throws_cancelled_error_once, *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto blocker = pool.submit([gate] { gate.wait(); });
    std::vector<int> xs(20, 1);
    auto it = pool.imap(twice, xs, pypool::IMapOptions{.chunksize = 2, .max_in_flight = 2});
    pool.terminate();
    go.set_value();
    pool.join();
    BOOST_TEST(what_of<pypool::CancelledError>([&] { (void)it.next(); }) ==
               "imap: items were cancelled or left unread by terminate()");
    BOOST_TEST(!it.next().has_value());  // once, then the end
}

BOOST_AUTO_TEST_CASE(operations_on_an_empty_handle_throw_value_error_no_state,
                     *boost::unit_test::timeout(60)) {
    pypool::AsyncResult<int> e;
    using VE = pypool::ValueError;
    BOOST_TEST(!e.valid());
    BOOST_TEST(!e.ready());
    BOOST_TEST(!e.done());
    BOOST_TEST(!e.running());
    BOOST_TEST(!e.cancelled());
    BOOST_TEST((e == pypool::AsyncResult<int>()));
    BOOST_TEST(what_of<VE>([&] { e.wait(); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)e.wait(1s); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)e.get(); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)e.get(1s); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)std::move(e).get(); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)e.result(); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)e.exception(); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)e.exception(1s); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)e.successful(); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)e.cancel(); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { e.add_done_callback([](const pypool::AsyncResult<int>&) {}); }) == no_state);
    pypool::AsyncResult<void> v;
    BOOST_TEST(what_of<VE>([&] { v.get(); }) == no_state);
    pypool::MapResult<int> m;
    BOOST_TEST(m.completed() == 0u);
    BOOST_TEST(m.total() == 0u);
    BOOST_TEST(what_of<VE>([&] { (void)m.get(); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)m.cancel(); }) == no_state);
}

BOOST_AUTO_TEST_CASE(wait_or_as_completed_given_an_empty_handle_throws_value_error,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.submit(twice, 1);
    pypool::AsyncResult<int> e;
    using VE = pypool::ValueError;
    BOOST_TEST(what_of<VE>([&] { (void)pypool::wait({r, e}); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)pypool::wait(std::vector{e}, 1s); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)pypool::as_completed({r, e}); }) == no_state);
    BOOST_TEST(what_of<VE>([&] { (void)pypool::as_completed(std::vector{e, r}, 1s); }) == no_state);
    BOOST_TEST(r.get() == 2);
}

BOOST_AUTO_TEST_CASE(as_completed_timeout_throws_timeout_error_n_of_m_futures_unfinished,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto done = pool.submit(twice, 1);
    done.wait();
    auto slow1 = pool.submit([gate] { gate.wait(); return 0; });
    auto slow2 = pool.submit([gate] { gate.wait(); return 0; });
    std::vector<pypool::AsyncResult<int>> yielded;
    const std::string got = what_of<pypool::TimeoutError>([&] {
        for (auto& f : pypool::as_completed({done, slow1, slow2}, 20ms)) yielded.push_back(f);
    });
    BOOST_TEST(got == "2 (of 3) futures unfinished");
    BOOST_REQUIRE(yielded.size() == 1u);
    BOOST_TEST((yielded[0] == done));
    go.set_value();
    BOOST_TEST(slow1.get() + slow2.get() == 0);
}

// ---- timeouts ------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_nan_timeout_throws_value_error_at_every_wait, *boost::unit_test::timeout(60)) {
    using VE = pypool::ValueError;
    const std::string nan_msg = "Invalid value NaN (not a number)";
    const std::chrono::duration<double> nan(std::numeric_limits<double>::quiet_NaN());
    const std::chrono::duration<float, std::milli> nan_ms(std::numeric_limits<float>::quiet_NaN());
    pypool::ThreadPool pool(2);
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto done = pool.submit(twice, 1);
    done.wait();
    auto slow = pool.submit([gate] { gate.wait(); return 0; });
    auto map = pool.map_async(twice, std::vector{1, 2});
    map.wait();
    for (auto r : {done, slow}) {  // ready or not: the timeout itself is wrong
        BOOST_TEST(what_of<VE>([&] { (void)r.get(nan); }) == nan_msg);
        BOOST_TEST(what_of<VE>([&] { (void)r.get(nan_ms); }) == nan_msg);
        BOOST_TEST(what_of<VE>([&] { (void)r.result(nan); }) == nan_msg);
        BOOST_TEST(what_of<VE>([&] { (void)r.wait(nan); }) == nan_msg);
        BOOST_TEST(what_of<VE>([&] { (void)r.exception(nan); }) == nan_msg);
        BOOST_TEST(what_of<VE>([&] { (void)pypool::AsyncResult<int>(r).get(nan); }) == nan_msg);
        BOOST_TEST(what_of<VE>([&] { (void)pypool::AsyncResult<int>(r).result(nan); }) == nan_msg);
        BOOST_TEST(what_of<VE>([&] { (void)pypool::wait({r}, nan); }) == nan_msg);
        BOOST_TEST(what_of<VE>([&] { (void)pypool::wait(std::vector{r}, nan_ms); }) == nan_msg);
        BOOST_TEST(what_of<VE>([&] { (void)pypool::as_completed({r}, nan); }) == nan_msg);
        BOOST_TEST(what_of<VE>([&] { (void)pypool::as_completed(std::vector{r}, nan); }) == nan_msg);
    }
    BOOST_TEST(what_of<VE>([&] { (void)map.get(nan); }) == nan_msg);
    BOOST_TEST(what_of<VE>([&] { (void)map.wait(nan_ms); }) == nan_msg);
    auto it = pool.imap(twice, std::vector{1, 2});
    BOOST_TEST(what_of<VE>([&] { (void)it.next(nan); }) == nan_msg);
    BOOST_TEST((it.next(10s) == 2));  // nothing was lost
    go.set_value();
    BOOST_TEST(slow.get(10s) == 0);
}

BOOST_AUTO_TEST_CASE(infinite_and_huge_timeouts_mean_forever_and_never_overflow,
                     *boost::unit_test::timeout(60)) {
    const double inf = std::numeric_limits<double>::infinity();
    const std::chrono::duration<double> pos_inf(inf), neg_inf(-inf), huge(1e300);
    // 3e9 s (95 years) in units of 1/3 s: converting it to nanoseconds overflows 64 bits
    const std::chrono::duration<long long, std::ratio<1, 3>> odd_units(9'000'000'000LL);
    pypool::ThreadPool pool(2);
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto slow = pool.submit([gate] { gate.wait(); return 0; });
    BOOST_TEST(!slow.wait(neg_inf));  // zero or negative: check now
    BOOST_TEST(!slow.wait(-std::chrono::hours::max()));
    BOOST_TEST(what_of<pypool::TimeoutError>([&] { (void)slow.get(neg_inf); }) ==
               "result not ready within the timeout");
    BOOST_TEST(pypool::wait({slow}, neg_inf).not_done.size() == 1u);
    go.set_value();
    BOOST_TEST(slow.get(pos_inf) == 0);
    BOOST_TEST(slow.wait(huge));
    BOOST_TEST(slow.wait(odd_units));
    BOOST_TEST(slow.wait(std::chrono::nanoseconds::max()));
    BOOST_TEST(slow.wait(std::chrono::hours::max()));
    BOOST_TEST(slow.wait(std::chrono::duration<float>::max()));
    BOOST_TEST(!slow.exception(pos_inf));
    BOOST_TEST(pypool::wait({slow}, pos_inf).done.size() == 1u);
    BOOST_TEST(pypool::wait({slow}, odd_units).done.size() == 1u);
    int n = 0;
    for (auto& f : pypool::as_completed({slow}, pos_inf)) n += 1 + f.result();
    for (auto& f : pypool::as_completed({slow}, std::chrono::hours::max())) n += 1 + f.result();
    BOOST_TEST(n == 2);
    auto it = pool.imap(twice, std::vector{1, 2});
    BOOST_TEST((it.next(pos_inf) == 2));
    BOOST_TEST((it.next(odd_units) == 4));
    BOOST_TEST(!it.next(huge));
}

// ---- Asio executors ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(posting_to_worker_or_loop_executor_after_join_throws_the_first_stops_error,
                     *boost::unit_test::timeout(60)) {
    {
        pypool::ThreadPool pool(1);
        pool.close();
        std::atomic<int> ran{0};
        boost::asio::post(pypool::worker_executor(pool), [&] { ran++; });  // before join: runs
        pool.join();
        BOOST_TEST(ran.load() == 1);
        BOOST_TEST(what_of<pypool::ValueError>([&] {
                       boost::asio::post(pypool::worker_executor(pool), [&] { ran++; });
                   }) == not_running);
        BOOST_TEST(what_of<pypool::ValueError>([&] {
                       boost::asio::post(pypool::loop_executor(pool), [&] { ran++; });
                   }) == not_running);
        BOOST_TEST(ran.load() == 1);
    }
    {
        pypool::ThreadPool pool(1);
        pool.shutdown();
        BOOST_TEST(what_of<pypool::RuntimeError>([&] {
                       boost::asio::post(pypool::worker_executor(pool), [] {});
                   }) == after_shutdown);
        BOOST_TEST(what_of<pypool::RuntimeError>([&] {
                       boost::asio::post(pypool::loop_executor(pool), [] {});
                   }) == after_shutdown);
    }
}

// ---- destroying a pool on its own thread --------------------------------------------------------

namespace {
/// Runs child() in a forked process with stderr captured; returns (wait status, stderr).
template <class F>
std::pair<int, std::string> run_in_child(F child) {
    int fds[2];
    BOOST_REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        // Boost.Test's handlers would report the abort and go on running the suite here.
        std::signal(SIGABRT, SIG_DFL);
        std::signal(SIGALRM, SIG_DFL);
        ::alarm(30);  // a child that does not die fails the test instead of hanging it
        ::close(fds[0]);
        ::dup2(fds[1], 2);
        child();
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string err;
    char buf[512];
    for (;;) {
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n > 0) {
            err.append(buf, static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;
        }
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return {status, err};
}
}  // namespace

BOOST_AUTO_TEST_CASE(destroying_a_pool_on_its_own_thread_prints_a_message_and_terminates,
                     *boost::unit_test::timeout(120)) {
    const std::string msg = "pypool: a ThreadPool was destroyed on one of its own threads";
    // on a worker
    auto [status, err] = run_in_child([] {
        auto* p = new pypool::ThreadPool(1);
        (void)p->submit([p] { delete p; });
        for (;;) ::pause();
    });
    BOOST_TEST(WIFSIGNALED(status));
    BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT), "status " << status);
    BOOST_TEST(err.find(msg) != std::string::npos, "stderr: " << err);
    // on the callback thread
    auto [status2, err2] = run_in_child([] {
        auto* p = new pypool::ThreadPool(1);
        (void)p->apply_async(twice, std::tuple{1}, {.callback = [p](const int&) { delete p; }});
        for (;;) ::pause();
    });
    BOOST_TEST((WIFSIGNALED(status2) && WTERMSIG(status2) == SIGABRT), "status " << status2);
    BOOST_TEST(err2.find(msg) != std::string::npos, "stderr: " << err2);
}
