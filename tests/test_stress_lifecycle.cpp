// Stress: close(), terminate(), join(), shutdown() and the destructor racing with
// submissions and callbacks, from several threads, for thousands of rounds; and thousands
// of pools created, used and destroyed. No hang, no crash, no lost task, no leaked thread.
#include <boost/test/unit_test.hpp>

#include <pypool/pypool.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "stress_common.hpp"
#include "thread_count.hpp"

namespace {

// The baseline is taken after one pool came and went, so helper threads that a sanitizer
// runtime starts lazily are already there.
using test_threads::thread_count;
using test_threads::thread_count_settled;

struct Round {
    stress::Ledger ledger;
    std::mutex m;
    std::vector<std::pair<stress::Entry*, pypool::AsyncResult<void>>> handles;

    /// Submits a task whose callback may chain a follow-up; false once rejected.
    bool submit(pypool::ThreadPool& pool, int chain) {
        stress::Entry& e = ledger.open(true);
        try {
            auto h = pool.apply_async(
                [&e] { e.ran.fetch_add(1); }, std::tuple{},
                {.callback =
                     [this, &pool, &e, chain] {
                         e.callbacks.fetch_add(1);
                         if (chain > 0) (void)submit(pool, chain - 1);  // may be rejected
                     },
                 .error_callback = [&e](std::exception_ptr) { e.callbacks.fetch_add(1); }});
            std::lock_guard lk(m);
            handles.emplace_back(&e, std::move(h));
            return true;
        } catch (const pypool::ValueError&) {
        } catch (const pypool::RuntimeError&) {
        }
        ledger.reject(e);
        return false;
    }

    std::string verify() {
        std::lock_guard lk(m);
        for (auto& [e, h] : handles) {
            if (!h.ready()) return "a result is not ready after join()";
            if (h.cancelled()) e->cancelled.fetch_add(1);
        }
        return ledger.verify();
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(stops_racing_with_submissions_and_callbacks_lose_no_task,
                     *boost::unit_test::timeout(600)) {
    const std::uint64_t seed = stress::seed_for("lifecycle_races");
    std::mt19937_64 rng(seed);
    { pypool::ThreadPool warm(2); }
    const std::size_t threads_before = thread_count();
    const std::size_t rounds = stress::scaled(1500);
    for (std::size_t round = 0; round < rounds; ++round) {
        Round r;
        const std::uint64_t plan = rng();
        {
            auto pool = std::make_unique<pypool::ThreadPool>(2);
            std::latch go(3);
            std::thread submitter([&] {
                go.arrive_and_wait();
                for (int i = 0; i < 200; ++i)
                    if (!r.submit(*pool, static_cast<int>((plan >> 8) % 4))) break;
            });
            std::thread stopper([&] {
                go.arrive_and_wait();
                for (std::uint64_t spin = 0; spin < (plan >> 16) % 2000; ++spin)
                    std::atomic_signal_fence(std::memory_order_seq_cst);
                switch (plan % 5) {
                    case 0: pool->close(); break;
                    case 1: pool->terminate(); break;
                    case 2: pool->shutdown(false, (plan & 64) != 0); break;
                    case 3: pool->close(); pool->terminate(); break;
                    default: break;  // leave it running: the destructor drains
                }
            });
            std::thread canceller([&] {
                go.arrive_and_wait();
                for (int i = 0; i < 50; ++i) {
                    pypool::AsyncResult<void> h;
                    {
                        std::lock_guard lk(r.m);
                        if (!r.handles.empty()) h = r.handles[(plan >> (i % 32)) % r.handles.size()].second;
                    }
                    if (h.valid()) h.cancel();
                }
            });
            submitter.join();
            stopper.join();
            canceller.join();
            switch ((plan >> 40) % 3) {
                case 0:
                    if ((plan % 5) != 4) {
                        // two threads join at once
                        std::thread other([&] { pool->join(); });
                        pool->join();
                        other.join();
                    }
                    break;
                case 1:
                    pool->shutdown(true, (plan & 128) != 0);
                    break;
                default:
                    break;  // the destructor closes and joins
            }
            pool.reset();
        }
        const std::string problem = r.verify();
        if (!problem.empty()) {
            BOOST_TEST_MESSAGE("round " << round << " plan " << plan);
            BOOST_FAIL(problem);
        }
    }
    BOOST_TEST(thread_count_settled(threads_before) <= threads_before);
}

BOOST_AUTO_TEST_CASE(ten_thousand_pools_created_used_destroyed_leak_no_thread,
                     *boost::unit_test::timeout(600)) {
    { pypool::ThreadPool warm(2); }
    const std::size_t threads_before = thread_count();
    const std::size_t n = stress::scaled(10000);
    std::size_t sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
        pypool::ThreadPool pool(2);
        auto r = pool.apply_async([](std::size_t x) { return x; }, std::tuple{i},
                                  {.callback = [](const std::size_t&) {}});
        sum += r.get();
        if (i % 3 == 0) pool.terminate();
    }
    BOOST_TEST(sum == n * (n - 1) / 2);
    BOOST_TEST(thread_count_settled(threads_before) <= threads_before);
}

BOOST_AUTO_TEST_CASE(destructor_drains_callback_chains_still_growing,
                     *boost::unit_test::timeout(600)) {
    const std::size_t rounds = stress::scaled(300);
    for (std::size_t round = 0; round < rounds; ++round) {
        Round r;
        {
            pypool::ThreadPool pool(2);
            for (int i = 0; i < 4; ++i) r.submit(pool, 25);
        }  // close + join: every follow-up submitted from a callback is accepted and runs
        const std::string problem = r.verify();
        BOOST_REQUIRE_MESSAGE(problem.empty(), problem);
        std::lock_guard lk(r.m);
        BOOST_REQUIRE_EQUAL(r.handles.size(), 4u * 26u);
    }
}
