// close / terminate / join / shutdown / the destructor, with Python's messages.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
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

template <class E, class Fn>
std::string message_of(Fn&& fn) {
    try {
        fn();
    } catch (const E& e) {
        return e.what();
    } catch (...) {
        return "<other exception>";
    }
    return "<no exception>";
}

const std::string not_running = "Pool not running";
const std::string after_shutdown = "cannot schedule new futures after shutdown";
const std::string still_running = "Pool is still running";

// Occupies all n workers of a pool until release() (each task reports its start).
class Occupier {
public:
    Occupier(pypool::ThreadPool& pool, std::ptrdiff_t n) : started_(n) {
        for (std::ptrdiff_t i = 0; i < n; ++i) {
            rs_.push_back(pool.apply_async([this] {
                started_.count_down();
                release_.wait();
                ++finished_;
            }));
        }
        started_.wait();
    }
    void release() { release_.count_down(); }
    std::vector<AsyncResult<void>>& results() { return rs_; }
    int finished() const { return finished_.load(); }
    ~Occupier() { release_.count_down(); }  // never leave a worker blocked
    Occupier(const Occupier&) = delete;
    Occupier& operator=(const Occupier&) = delete;

private:
    std::latch started_;
    std::latch release_{1};
    std::atomic<int> finished_{0};
    std::vector<AsyncResult<void>> rs_;
};

}  // namespace

// ---- errors and messages --------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(join_before_close_throws_value_error_pool_is_still_running,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    BOOST_TEST(message_of<pypool::ValueError>([&] { pool.join(); }) == still_running);
    pool.close();
    pool.join();
}

BOOST_AUTO_TEST_CASE(apply_async_after_close_throws_value_error_pool_not_running,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.close();
    BOOST_TEST(message_of<pypool::ValueError>([&] { pool.apply_async([] {}); }) == not_running);
    BOOST_TEST(message_of<pypool::ValueError>([&] { pool.apply([] {}); }) == not_running);
    BOOST_TEST(message_of<pypool::ValueError>([&] { pool.submit([] {}); }) == not_running);
    pool.join();
    BOOST_TEST(message_of<pypool::ValueError>([&] { pool.apply_async([] {}); }) == not_running);
}

BOOST_AUTO_TEST_CASE(apply_async_after_terminate_throws_value_error_pool_not_running,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.terminate();
    BOOST_TEST(message_of<pypool::ValueError>([&] { pool.apply_async([] {}); }) == not_running);
    BOOST_TEST(message_of<pypool::ValueError>([&] { pool.submit([] {}); }) == not_running);
    pool.join();
}

BOOST_AUTO_TEST_CASE(submit_after_shutdown_throws_runtime_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.shutdown();
    BOOST_TEST(message_of<pypool::RuntimeError>([&] { pool.submit([] {}); }) == after_shutdown);
    BOOST_TEST(message_of<pypool::RuntimeError>([&] { pool.apply_async([] {}); }) ==
               after_shutdown);
    BOOST_TEST(message_of<pypool::RuntimeError>([&] { pool.apply([] {}); }) == after_shutdown);
}

BOOST_AUTO_TEST_CASE(first_stop_decides_the_error_close_then_shutdown, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.close();
    pool.shutdown();
    BOOST_TEST(message_of<pypool::ValueError>([&] { pool.submit([] {}); }) == not_running);
}

BOOST_AUTO_TEST_CASE(first_stop_decides_the_error_shutdown_then_terminate, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.shutdown(false);
    pool.terminate();
    BOOST_TEST(message_of<pypool::RuntimeError>([&] { pool.apply_async([] {}); }) ==
               after_shutdown);
    pool.join();
}

BOOST_AUTO_TEST_CASE(first_stop_decides_the_error_terminate_then_shutdown, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.terminate();
    pool.shutdown();
    BOOST_TEST(message_of<pypool::ValueError>([&] { pool.submit([] {}); }) == not_running);
}

// ---- terminate ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(terminate_completes_queued_tasks_as_cancelled, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Occupier busy(pool, 2);
    std::atomic<int> ran{0};
    std::vector<AsyncResult<int>> queued;
    for (int i = 0; i < 6; ++i) {
        queued.push_back(pool.apply_async([&ran, i] {
            ++ran;
            return i;
        }));
    }
    pool.terminate();
    // Cancelled at once: no need to release the workers first.
    for (auto& q : queued) {
        BOOST_TEST(q.cancelled());
        BOOST_TEST(q.ready());
        BOOST_CHECK_THROW((void)q.get(), pypool::CancelledError);
    }
    busy.release();
    pool.join();
    BOOST_TEST(ran.load() == 0);
    BOOST_TEST(busy.finished() == 2);  // running tasks were not killed
    for (auto& r : busy.results()) BOOST_TEST(r.successful());
}

BOOST_AUTO_TEST_CASE(get_after_terminate_throws_cancelled_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Occupier busy(pool, 1);
    auto r = pool.apply_async([] { return 1; });
    pool.terminate();
    busy.release();
    pool.join();
    BOOST_CHECK_THROW((void)r.get(), pypool::CancelledError);
    BOOST_CHECK_THROW((void)r.get(1s), pypool::CancelledError);
    BOOST_TEST(!r.successful());
}

BOOST_AUTO_TEST_CASE(terminate_calls_error_callback_with_cancelled_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Occupier busy(pool, 1);
    int cancelled_seen = 0;  // callbacks only
    int other_seen = 0;
    bool callback_called = false;
    std::vector<AsyncResult<int>> queued;
    for (int i = 0; i < 4; ++i) {
        queued.push_back(pool.apply_async([i] { return i; }, std::tuple{},
                                          {.callback = [&](const int&) { callback_called = true; },
                                           .error_callback = [&](std::exception_ptr e) {
                                               try {
                                                   std::rethrow_exception(e);
                                               } catch (const pypool::CancelledError&) {
                                                   ++cancelled_seen;
                                               } catch (...) {
                                                   ++other_seen;
                                               }
                                           }}));
    }
    pool.terminate();
    for (auto& q : queued) {
        BOOST_CHECK_THROW((void)q.get(), pypool::CancelledError);  // waits for error_callback
        BOOST_TEST(q.cancelled());
    }
    BOOST_TEST(cancelled_seen == 4);
    BOOST_TEST(other_seen == 0);
    BOOST_TEST(!callback_called);
    busy.release();
    pool.join();
}

BOOST_AUTO_TEST_CASE(terminate_returns_without_waiting_for_running_tasks, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Occupier busy(pool, 2);
    pool.terminate();  // would hang here if it waited for the blocked tasks
    BOOST_TEST(busy.finished() == 0);
    for (auto& r : busy.results()) BOOST_TEST(!r.ready());
    busy.release();
    pool.join();
    BOOST_TEST(busy.finished() == 2);
}

BOOST_AUTO_TEST_CASE(join_after_terminate_waits_for_running_tasks, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::latch started(1), release(1);
    int side_effect = 0;  // plain int: join() must order it before our read
    auto r = pool.apply_async([&] {
        started.count_down();
        release.wait();
        std::this_thread::sleep_for(20ms);  // lasts a while after the release
        side_effect = 1;
    });
    started.wait();
    pool.terminate();
    release.count_down();
    pool.join();
    BOOST_TEST(side_effect == 1);
    BOOST_TEST(r.ready());
    BOOST_TEST(r.successful());
}

BOOST_AUTO_TEST_CASE(after_terminate_submissions_from_inside_are_rejected, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::latch started(1), release(1);
    std::string from_task;
    std::string from_callback;
    auto r = pool.apply_async(
        [&] {
            started.count_down();
            release.wait();
            from_task = message_of<pypool::ValueError>([&] { pool.apply_async([] {}); });
        },
        std::tuple{}, {.callback = [&] {
            from_callback = message_of<pypool::ValueError>([&] { pool.apply_async([] {}); });
        }});
    started.wait();
    pool.terminate();
    release.count_down();
    pool.join();
    BOOST_TEST(from_task == not_running);
    BOOST_TEST(from_callback == not_running);
}

// ---- close and join -------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(close_lets_queued_work_run, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::atomic<int> ran{0};
    std::vector<AsyncResult<void>> rs;
    for (int i = 0; i < 100; ++i) rs.push_back(pool.apply_async([&] { ++ran; }));
    pool.close();
    pool.join();
    BOOST_TEST(ran.load() == 100);
    for (auto& r : rs) BOOST_TEST(r.successful());
}

BOOST_AUTO_TEST_CASE(join_returns_only_after_every_callback_ran, *utf::timeout(60)) {
    pypool::ThreadPool pool(3);
    int callbacks = 0;  // callbacks only; read after join()
    int done_callbacks = 0;
    std::vector<AsyncResult<int>> rs;
    for (int i = 0; i < 200; ++i) {
        rs.push_back(pool.apply_async([i] { return i; }, std::tuple{},
                                      {.callback = [&](const int& v) {
                                          if (v % 50 == 0) std::this_thread::sleep_for(2ms);
                                          ++callbacks;
                                      }}));
        rs.back().add_done_callback([&](const AsyncResult<int>&) { ++done_callbacks; });
    }
    pool.close();
    pool.join();
    BOOST_TEST(callbacks == 200);
    BOOST_TEST(done_callbacks == 200);
}

BOOST_AUTO_TEST_CASE(join_after_terminate_waits_for_every_error_callback, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Occupier busy(pool, 1);
    int error_callbacks = 0;  // callbacks only; read after join()
    for (int i = 0; i < 20; ++i) {
        pool.apply_async([] {}, std::tuple{}, {.error_callback = [&](std::exception_ptr) {
                                                   std::this_thread::sleep_for(1ms);  // lasts
                                                   ++error_callbacks;
                                               }});
    }
    pool.terminate();
    busy.release();
    pool.join();
    BOOST_TEST(error_callbacks == 20);
}

BOOST_AUTO_TEST_CASE(concurrent_joins_all_return_after_the_work, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::latch release(1);
    std::atomic<int> ran{0};
    for (int i = 0; i < 10; ++i) {
        pool.apply_async([&] {
            release.wait();
            ++ran;
        });
    }
    pool.close();
    std::atomic<int> seen_by_joiners{0};
    std::vector<std::thread> joiners;
    for (int i = 0; i < 3; ++i) {
        joiners.emplace_back([&] {
            pool.join();
            seen_by_joiners += ran.load();
        });
    }
    release.count_down();
    pool.join();
    for (auto& t : joiners) t.join();
    BOOST_TEST(ran.load() == 10);
    BOOST_TEST(seen_by_joiners.load() == 30);
}

BOOST_AUTO_TEST_CASE(terminate_while_another_thread_joins, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Occupier busy(pool, 1);
    std::vector<AsyncResult<int>> queued;
    for (int i = 0; i < 5; ++i) queued.push_back(pool.apply_async([i] { return i; }));
    pool.close();
    std::thread joiner([&] { pool.join(); });
    pool.terminate();
    for (auto& q : queued) BOOST_TEST(q.cancelled());
    busy.release();
    joiner.join();
    pool.join();
}

BOOST_AUTO_TEST_CASE(join_from_a_worker_throws_deadlock_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::latch checked(1), release(1);
    bool deadlock = false;
    std::string before_close;
    auto r = pool.apply_async([&] {
        before_close = message_of<pypool::ValueError>([&] { pool.join(); });
        checked.count_down();
        release.wait();
        try {
            pool.join();
        } catch (const pypool::DeadlockError&) {
            deadlock = true;
        }
    });
    checked.wait();
    pool.close();
    release.count_down();
    pool.join();
    BOOST_TEST(before_close == still_running);
    BOOST_TEST(deadlock);
}

BOOST_AUTO_TEST_CASE(shutdown_with_wait_from_a_worker_throws_deadlock_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    bool deadlock = false;
    pool.apply_async([&] {
            try {
                pool.shutdown(true);
            } catch (const pypool::DeadlockError&) {
                deadlock = true;
            }
        })
        .get();
    BOOST_TEST(deadlock);
    pool.join();  // shutdown() had closed the pool before it refused to wait
}

BOOST_AUTO_TEST_CASE(shutdown_without_wait_from_a_worker_is_allowed, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    pool.apply_async([&] { pool.shutdown(false); }).get();
    BOOST_CHECK_THROW(pool.submit([] {}), pypool::RuntimeError);
    pool.join();
}

BOOST_AUTO_TEST_CASE(close_terminate_and_join_are_idempotent, *utf::timeout(60)) {
    {
        pypool::ThreadPool pool(1);
        pool.close();
        pool.close();
        pool.join();
        pool.join();
        pool.close();
        pool.terminate();
        pool.join();
    }
    {
        pypool::ThreadPool pool(1);
        pool.terminate();
        pool.terminate();
        pool.close();
        pool.join();
        pool.join();
        pool.terminate();
        BOOST_CHECK_THROW(pool.apply_async([] {}), pypool::ValueError);
    }
    {
        pypool::ThreadPool pool(1);
        pool.shutdown();
        pool.shutdown();
        pool.shutdown(false, true);
        pool.join();
    }
}

BOOST_AUTO_TEST_CASE(work_submitted_from_a_task_after_close_is_accepted_until_join_drained_it,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::latch release(1);
    std::atomic<int> descendants{0};
    std::atomic<int> rejected{0};
    // Each task spawns two children down to depth 4, all after close().
    struct Spawner {
        pypool::ThreadPool* pool;
        std::atomic<int>* count;
        std::atomic<int>* rejected;
        void operator()(int depth) const {
            ++*count;
            if (depth == 0) return;
            try {
                pool->apply_async(*this, std::tuple{depth - 1});
                pool->apply_async(*this, std::tuple{depth - 1});
            } catch (const pypool::ValueError&) {
                ++*rejected;
            }
        }
    };
    pool.apply_async([&] {
        release.wait();
        Spawner{&pool, &descendants, &rejected}(4);
    });
    pool.close();
    release.count_down();
    pool.join();
    BOOST_TEST(rejected.load() == 0);
    BOOST_TEST(descendants.load() == 31);  // 1 + 2 + 4 + 8 + 16
}

BOOST_AUTO_TEST_CASE(work_submitted_from_a_callback_after_close_runs_before_join_returns,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::latch release(1);
    std::atomic<bool> follow_up{false};
    pool.apply_async([&] { release.wait(); }, std::tuple{},
                     {.callback = [&] { pool.apply_async([&] { follow_up = true; }); }});
    pool.close();
    release.count_down();
    pool.join();
    BOOST_TEST(follow_up.load());
}

BOOST_AUTO_TEST_CASE(inside_submissions_are_rejected_after_join_finished, *utf::timeout(60)) {
    // A handle's done callback that runs after join() (on the calling thread) is not
    // "inside the pool": it is refused like any outside submission.
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([] { return 1; });
    pool.close();
    pool.join();
    std::string message;
    r.add_done_callback([&](const AsyncResult<int>&) {
        message = message_of<pypool::ValueError>([&] { pool.apply_async([] {}); });
    });
    BOOST_TEST(message == not_running);
}

// ---- the destructor ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(destructor_of_a_running_pool_drains_queued_work, *utf::timeout(60)) {
    std::atomic<int> ran{0};
    int callbacks = 0;
    std::vector<AsyncResult<void>> rs;
    {
        pypool::ThreadPool pool(1);
        std::latch release(1);
        rs.push_back(pool.apply_async([&] { release.wait(); }));
        for (int i = 0; i < 50; ++i) {
            rs.push_back(pool.apply_async([&] { ++ran; }, std::tuple{},
                                          {.callback = [&] { ++callbacks; }}));
        }
        release.count_down();
    }  // close() + join()
    BOOST_TEST(ran.load() == 50);
    BOOST_TEST(callbacks == 50);
    for (auto& r : rs) BOOST_TEST(r.successful());
}

BOOST_AUTO_TEST_CASE(destructor_after_close_joins, *utf::timeout(60)) {
    std::atomic<int> ran{0};
    {
        pypool::ThreadPool pool(2);
        for (int i = 0; i < 20; ++i) pool.apply_async([&] { ++ran; });
        pool.close();
    }
    BOOST_TEST(ran.load() == 20);
}

BOOST_AUTO_TEST_CASE(destructor_after_terminate_waits_for_running_tasks, *utf::timeout(60)) {
    std::atomic<int> finished{0};
    {
        pypool::ThreadPool pool(1);
        std::latch started(1);
        pool.apply_async([&] {
            started.count_down();
            std::this_thread::sleep_for(20ms);  // lasts a while
            ++finished;
        });
        started.wait();
        pool.terminate();
    }
    BOOST_TEST(finished.load() == 1);
}

BOOST_AUTO_TEST_CASE(results_outlive_their_pool, *utf::timeout(60)) {
    AsyncResult<std::string> r;
    AsyncResult<int> cancelled;
    {
        pypool::ThreadPool pool(1);
        std::latch started(1), release(1);
        r = pool.apply_async([&] {
            started.count_down();
            release.wait();
            return std::string("kept");
        });
        cancelled = pool.apply_async([] { return 1; });
        started.wait();
        pool.terminate();
        release.count_down();
    }
    BOOST_TEST(r.get() == "kept");
    BOOST_CHECK_THROW((void)cancelled.get(), pypool::CancelledError);
}
