// Waiting on results from inside the pool: a waiting worker runs queued tasks meanwhile.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <pypool/pypool.hpp>

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using pypool::AsyncResult;

namespace {

struct Fib {
    pypool::ThreadPool* pool;
    int operator()(int n) const {
        if (n < 2) return n;
        auto a = pool->apply_async(*this, std::tuple{n - 1});
        auto b = pool->apply_async(*this, std::tuple{n - 2});
        return a.get() + b.get();
    }
};

int fib_plain(int n) { return n < 2 ? n : fib_plain(n - 1) + fib_plain(n - 2); }

}  // namespace

BOOST_AUTO_TEST_CASE(task_on_single_worker_pool_waits_on_its_own_subtask, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([&] {
        auto sub = pool.apply_async([](int x) { return x * 2; }, std::tuple{21});
        return sub.get() + 0;
    });
    BOOST_TEST(r.get() == 42);
}

BOOST_AUTO_TEST_CASE(apply_from_a_worker_of_a_single_worker_pool_completes, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    BOOST_TEST(pool.apply([&] { return pool.apply([] { return 5; }) + 1; }) == 6);
}

BOOST_AUTO_TEST_CASE(wait_without_get_from_a_worker_also_helps, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([&] {
        auto sub = pool.apply_async([] {});
        sub.wait();
        return sub.ready();
    });
    BOOST_TEST(r.get());
}

BOOST_AUTO_TEST_CASE(recursive_fibonacci_through_apply_async_on_two_workers, *utf::timeout(120)) {
    pypool::ThreadPool pool(2);
    BOOST_TEST(pool.apply(Fib{&pool}, std::tuple{18}) == fib_plain(18));
}

BOOST_AUTO_TEST_CASE(recursive_fibonacci_on_one_worker, *utf::timeout(120)) {
    pypool::ThreadPool pool(1);
    BOOST_TEST(pool.apply(Fib{&pool}, std::tuple{14}) == fib_plain(14));
}

BOOST_AUTO_TEST_CASE(worker_waiting_with_a_timeout_also_helps, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([&] {
        auto sub = pool.apply_async([] { return 3; });
        const bool ready = sub.wait(30s);  // only this worker can run it
        return ready ? sub.get(30s) : -1;
    });
    BOOST_TEST(r.get() == 3);
}

BOOST_AUTO_TEST_CASE(worker_wait_with_a_timeout_times_out_when_nobody_finishes,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::latch sub_started(1), release(1);
    auto r = pool.apply_async([&] {
        auto sub = pool.apply_async([&] {
            sub_started.count_down();
            release.wait();
        });
        sub_started.wait();  // the subtask runs on the other worker
        bool timed_out = false;
        try {
            sub.get(20ms);
        } catch (const pypool::TimeoutError&) {
            timed_out = true;
        }
        const bool waited = sub.wait(10ms);
        release.count_down();
        sub.get();
        return timed_out && !waited;
    });
    BOOST_TEST(r.get());
}

BOOST_AUTO_TEST_CASE(all_workers_waiting_on_subtasks_do_not_deadlock, *utf::timeout(60)) {
    pypool::ThreadPool pool(3);
    std::vector<AsyncResult<int>> outer;
    for (int i = 0; i < 30; ++i) {
        outer.push_back(pool.apply_async([&pool, i] {
            std::vector<AsyncResult<int>> inner;
            for (int k = 0; k < 5; ++k)
                inner.push_back(pool.apply_async([i, k] { return i * 10 + k; }));
            int sum = 0;
            for (auto& r : inner) sum += r.get();
            return sum;
        }));
    }
    for (int i = 0; i < 30; ++i) BOOST_TEST(outer[static_cast<std::size_t>(i)].get() == 50 * i + 10);
}

BOOST_AUTO_TEST_CASE(worker_waits_on_a_subtask_with_a_callback, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::atomic<int> callback_value{0};
    auto r = pool.apply_async([&] {
        auto sub = pool.apply_async([] { return 8; }, std::tuple{},
                                    {.callback = [&](const int& v) { callback_value = v; }});
        const int v = sub.get();  // ready only after the callback ran on the loop
        return v + callback_value.load();
    });
    BOOST_TEST(r.get() == 16);
}

BOOST_AUTO_TEST_CASE(subtask_exception_reaches_the_waiting_task, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto r = pool.apply_async([&] {
        auto sub = pool.apply_async([]() -> int { throw std::runtime_error("inner"); });
        return sub.get();
    });
    BOOST_CHECK_THROW((void)r.get(), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(waiting_on_a_result_of_another_pool_from_a_worker_works,
                     *utf::timeout(60)) {
    pypool::ThreadPool a(1);
    pypool::ThreadPool b(1);
    std::latch release(1);
    auto foreign = b.apply_async([&] {
        release.wait();
        return 11;
    });
    auto r = a.apply_async([&] {
        release.count_down();
        return foreign.get() + 1;
    });
    BOOST_TEST(r.get() == 12);
}

BOOST_AUTO_TEST_CASE(chain_of_pools_waiting_through_their_workers_completes, *utf::timeout(60)) {
    pypool::ThreadPool a(1);
    pypool::ThreadPool b(1);
    pypool::ThreadPool c(1);
    auto r = a.apply_async([&] {
        return b.apply_async([&] { return c.apply_async([] { return 1; }).get() + 1; }).get() + 1;
    });
    BOOST_TEST(r.get() == 3);
}

namespace {
thread_local int fib_depth = 0;
std::atomic<int> fib_max_depth{0};

struct DepthFib {
    pypool::ThreadPool* pool;
    int operator()(int n) const {
        ++fib_depth;
        int m = fib_max_depth.load();
        while (fib_depth > m && !fib_max_depth.compare_exchange_weak(m, fib_depth)) {
        }
        int r = n;
        if (n >= 2) {
            auto a = pool->apply_async(*this, std::tuple{n - 1});
            auto b = pool->apply_async(*this, std::tuple{n - 2});
            r = a.get() + b.get();
        }
        --fib_depth;
        return r;
    }
};
}  // namespace

// A waiting worker runs the awaited task itself when it is still queued, so nesting follows
// the program's recursion, not the queue's length (helping with the oldest queued job
// nested once per queued task: about 4000 frames for Fibonacci(18), a stack overflow for
// Fibonacci(25)).
BOOST_AUTO_TEST_CASE(fork_join_recursion_nests_about_as_deep_as_the_program,
                     *utf::timeout(300)) {
    pypool::ThreadPool pool(2);
    fib_max_depth = 0;
    BOOST_TEST(pool.apply(DepthFib{&pool}, std::tuple{20}) == fib_plain(20));
    BOOST_TEST(fib_max_depth.load() <= 4 * 20);
}

// Issue 11 item 3: a waiting worker runs only the task it waits for (if still queued),
// never unrelated work that could block it. Two workers: W0 runs B; A on W1 waits for B;
// C, queued after A, blocks until A has passed its get(). Running C inside A's wait (the old
// helping design) hangs A; Python finishes, and so must pypool (a spare thread runs C).
BOOST_AUTO_TEST_CASE(a_waiting_worker_does_not_run_a_task_that_waits_for_it,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::promise<void> b_started_p, c_started_p, a_passed_p;
    auto b_started = b_started_p.get_future();
    std::shared_future<void> c_started = c_started_p.get_future().share();
    std::shared_future<void> a_passed = a_passed_p.get_future().share();
    auto b = pool.apply_async([&, c_started] {
        b_started_p.set_value();
        return c_started.wait_for(10s) == std::future_status::ready;  // B ends once C runs
    });
    b_started.wait();
    std::promise<void> a_started_p;
    auto a_started = a_started_p.get_future();
    auto a = pool.apply_async([&] {
        a_started_p.set_value();
        const bool v = b.get();
        a_passed_p.set_value();
        return v;
    });
    a_started.wait();
    auto c = pool.apply_async([&, a_passed] {
        c_started_p.set_value();
        return a_passed.wait_for(10s) == std::future_status::ready;
    });
    BOOST_TEST(c.get());  // false: C ran inside A's wait and waited for A in vain
    BOOST_TEST(a.get());
    BOOST_TEST(pool.size() == 2U);  // a spare thread does not change the pool's size
}

// Every worker blocks in a wait (a timed one never runs the awaited task itself) while the
// awaited task is queued: spare threads run it.
BOOST_AUTO_TEST_CASE(all_workers_blocked_in_waits_are_compensated, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::latch both_running(2);
    std::promise<AsyncResult<int>> late_p;
    std::shared_future<AsyncResult<int>> late = late_p.get_future().share();
    std::vector<AsyncResult<int>> outer;
    for (int i = 0; i < 2; ++i) {
        outer.push_back(pool.apply_async([&both_running, late] {
            both_running.arrive_and_wait();
            return late.get().get(30s);
        }));
    }
    both_running.wait();
    late_p.set_value(pool.apply_async([] { return 7; }));
    BOOST_TEST(outer[0].get() + outer[1].get() == 14);
    BOOST_TEST(pool.size() == 2U);
}

namespace {
// Runs wait(timeout) on a worker while an unrelated long task (up to 5 s, until the test
// ends) sits queued on that worker and another long one is the awaited task: returns the
// wait's duration in milliseconds.
template <class Wait>
long timed_wait_on_a_worker(Wait wait) {
    pypool::ThreadPool pool(2);
    std::promise<void> release_p;
    std::shared_future<void> release = release_p.get_future().share();
    auto r = pool.apply_async([&pool, &wait, release] {
        auto long_task = [release] { (void)release.wait_for(5s); };
        auto unrelated = pool.apply_async(long_task);      // queued on this worker
        auto awaited = pool.apply_async([release] {        // queued too: run inline it
            (void)release.wait_for(5s);                      // would overrun the deadline
            return 1;
        });
        const auto t0 = std::chrono::steady_clock::now();
        wait(pool, awaited, release);
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - t0)
            .count();
    });
    const long ms = r.get();
    release_p.set_value();
    pool.close();
    pool.join();
    return static_cast<long>(ms);
}
}  // namespace

// Issue 11 item 2: a timed wait on a worker returns within a few milliseconds of its
// deadline: it runs no other task meanwhile, and not the awaited one either.
BOOST_AUTO_TEST_CASE(a_timed_get_on_a_worker_returns_at_its_deadline, *utf::timeout(60)) {
    const long ms = timed_wait_on_a_worker([](pypool::ThreadPool&, AsyncResult<int>& a, auto) {
        BOOST_CHECK_THROW((void)a.get(20ms), pypool::TimeoutError);
    });
    BOOST_TEST(ms >= 20);
    BOOST_TEST(ms < 3000);  // the old helping wait ran a 5 s task first; 3 s leaves room for TSan
}

BOOST_AUTO_TEST_CASE(a_timed_wait_for_many_on_a_worker_returns_at_its_deadline,
                     *utf::timeout(60)) {
    const long ms = timed_wait_on_a_worker([](pypool::ThreadPool&, AsyncResult<int>& a, auto) {
        auto w = pypool::wait({a}, 20ms);
        BOOST_TEST(w.done.empty());
    });
    BOOST_TEST(ms >= 20);
    BOOST_TEST(ms < 3000);
}

BOOST_AUTO_TEST_CASE(a_timed_imap_next_on_a_worker_returns_at_its_deadline,
                     *utf::timeout(60)) {
    const long ms = timed_wait_on_a_worker(
        [](pypool::ThreadPool& pool, AsyncResult<int>&, std::shared_future<void> release) {
            auto it = pool.imap(
                [release](int x) {
                    (void)release.wait_for(5s);
                    return x;
                },
                std::vector<int>{1});
            BOOST_CHECK_THROW((void)it.next(20ms), pypool::TimeoutError);
        });
    BOOST_TEST(ms >= 20);
    BOOST_TEST(ms < 3000);
}

namespace {
// On a one-worker pool, task A waits (timed, so it never runs B itself) for B, which a
// spare thread runs in A's place. B queues `children` fire-and-forget tasks (on the spare's
// own queue) that each wait for `go`, then count themselves, and returns. Returns the
// thread ids of A and B.
std::pair<std::thread::id, std::thread::id> spare_queues_children(pypool::ThreadPool& pool,
                                                                  std::atomic<int>& ran,
                                                                  std::shared_future<void> go,
                                                                  int children) {
    auto a = pool.apply_async([&pool, &ran, go, children] {
        auto b = pool.apply_async([&pool, &ran, go, children] {
            for (int i = 0; i < children; ++i) {
                (void)pool.apply_async([&ran, go] {
                    (void)go.wait_for(10s);
                    ran.fetch_add(1);
                });
            }
            return std::this_thread::get_id();
        });
        return std::pair{std::this_thread::get_id(), b.get(30s)};
    });
    return a.get();
}
}  // namespace

// A spare thread queues what its tasks submit on a queue of its own (fork-join under a
// spare runs as under a worker). When it retires, jobs left there still run: the workers
// steal them, or they move to the shared queue.
BOOST_AUTO_TEST_CASE(jobs_a_spare_thread_queued_all_run_after_it_retires, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::atomic<int> ran{0};
    std::promise<void> go_p;
    auto [a_thread, b_thread] = spare_queues_children(pool, ran, go_p.get_future().share(), 64);
    BOOST_TEST((a_thread != b_thread));  // B ran on a spare thread while A waited
    go_p.set_value();
    pool.close();
    pool.join();
    BOOST_TEST(ran.load() == 64);
    const auto st = pool.stats();
    BOOST_TEST(st.completed == 66U);
    BOOST_TEST(st.queued == 0U);
    BOOST_TEST(st.running == 0U);
}

// terminate() cancels the jobs still queued on a spare thread's queue like any other.
BOOST_AUTO_TEST_CASE(terminate_cancels_jobs_queued_on_a_spare_thread, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::atomic<int> ran{0};
    std::promise<void> go_p;
    auto [a_thread, b_thread] = spare_queues_children(pool, ran, go_p.get_future().share(), 64);
    BOOST_TEST((a_thread != b_thread));
    pool.terminate();
    go_p.set_value();
    pool.join();
    const auto st = pool.stats();
    BOOST_TEST(st.cancelled > 0U);  // at most two children had started (one per thread)
    BOOST_TEST(static_cast<std::size_t>(ran.load()) + st.cancelled == 64U);
    BOOST_TEST(st.queued == 0U);
}
