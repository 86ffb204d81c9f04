// Waiting on results from inside the pool: a waiting worker runs queued tasks meanwhile.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <tuple>
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
