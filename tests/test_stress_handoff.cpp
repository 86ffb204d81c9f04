// Stress: the lock-free hand-offs of the core, run back to back for a time budget so that
// a lost wake-up shows up as a TimeoutError (never as a hang): the shared queue and the
// parking of idle workers, the workers' own queues and stealing, helping waits, the batch
// of completions that reaches the callback thread, and imap's and imap_unordered's chunks
// published without the stream's lock (and refilled in batches). Every wait has a generous
// timeout (seconds). Also the recycling of result states between threads.
#include <boost/test/unit_test.hpp>

#include <pypool/detail/state_alloc.hpp>
#include <pypool/pypool.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <latch>
#include <numeric>
#include <thread>
#include <tuple>
#include <vector>

#include "stress_common.hpp"

namespace {

using namespace std::chrono_literals;
constexpr auto patience = 20s;  // a lost wake-up, not a slow machine

std::int64_t fork_join(pypool::ThreadPool* pool, int depth) {
    if (depth <= 1) return 1;
    auto a = pool->apply_async(fork_join, std::tuple{pool, depth - 1});
    auto b = pool->apply_async(fork_join, std::tuple{pool, depth - 1});
    return a.get(patience) + b.get(patience) + 1;
}

}  // namespace

BOOST_AUTO_TEST_CASE(round_trips_with_idle_workers_in_between_never_lose_a_wake_up,
                     *boost::unit_test::timeout(300)) {
    // One task at a time: the workers go idle (spin, then park) between tasks, so every
    // submission races a worker going to sleep.
    const auto until = stress::deadline_in(3);
    std::size_t rounds = 0;
    for (int workers : {1, 2, 3}) {
        pypool::ThreadPool pool(workers);
        while (std::chrono::steady_clock::now() < until) {
            auto r = pool.apply_async([](int x) { return x + 1; }, std::tuple{static_cast<int>(rounds)});
            BOOST_REQUIRE_EQUAL(r.get(patience), static_cast<int>(rounds) + 1);
            if (++rounds % 5000 == 0) break;  // give the other pool sizes a turn
        }
    }
    BOOST_TEST(rounds > 0U);
}

BOOST_AUTO_TEST_CASE(bursts_from_several_threads_all_run_exactly_once,
                     *boost::unit_test::timeout(300)) {
    const auto until = stress::deadline_in(4);
    pypool::ThreadPool pool(2);
    std::atomic<std::int64_t> ran{0};
    std::int64_t submitted = 0;
    while (std::chrono::steady_clock::now() < until) {
        constexpr int producers = 3;
        constexpr int per_producer = 2000;
        std::latch start(producers);
        std::vector<std::thread> threads;
        std::vector<std::vector<pypool::AsyncResult<void>>> results(producers);
        for (int p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                start.arrive_and_wait();
                results[p].reserve(per_producer);
                for (int i = 0; i < per_producer; ++i)
                    results[p].push_back(pool.apply_async([&ran] { ran.fetch_add(1); }));
            });
        }
        for (auto& t : threads) t.join();
        for (auto& rs : results)
            for (auto& r : rs) BOOST_REQUIRE(r.wait(patience));
        submitted += producers * per_producer;
        BOOST_REQUIRE_EQUAL(ran.load(), submitted);
    }
}

BOOST_AUTO_TEST_CASE(fork_join_on_few_workers_completes_every_time,
                     *boost::unit_test::timeout(300)) {
    // Tasks submitted by workers go to their own queues; idle workers steal them, waiting
    // workers help. Depth 10 = 1,023 tasks per round.
    const auto until = stress::deadline_in(4);
    int rounds = 0;
    for (int workers = 1; std::chrono::steady_clock::now() < until; workers = workers % 3 + 1) {
        pypool::ThreadPool pool(workers);
        auto r = pool.apply_async(fork_join, std::tuple{&pool, 10});
        BOOST_REQUIRE_EQUAL(r.get(patience), 1023);
        ++rounds;
    }
    BOOST_TEST(rounds > 0);
}

BOOST_AUTO_TEST_CASE(tasks_that_submit_follow_ups_and_callbacks_that_do_all_finish,
                     *boost::unit_test::timeout(300)) {
    // Follow-ups from workers (own queues) and from the callback thread (shared queue);
    // completions reach the callback thread in batches.
    const auto until = stress::deadline_in(4);
    while (std::chrono::steady_clock::now() < until) {
        pypool::ThreadPool pool(2);
        constexpr int n = 3000;
        std::atomic<int> follow_ups{0};
        std::atomic<int> callbacks{0};
        int seen_callbacks = 0;  // only the callback thread touches it
        std::vector<pypool::AsyncResult<void>> firsts;
        firsts.reserve(n);
        for (int i = 0; i < n; ++i) {
            if (i % 2 == 0) {
                firsts.push_back(pool.apply_async(
                    [&pool, &follow_ups] {
                        pool.apply_async([&follow_ups] { follow_ups.fetch_add(1); });
                    }));
            } else {
                firsts.push_back(pool.apply_async(
                    [] {}, {},
                    {.callback =
                         [&pool, &follow_ups, &callbacks, &seen_callbacks] {
                             ++seen_callbacks;
                             callbacks.fetch_add(1);
                             pool.apply_async([&follow_ups] { follow_ups.fetch_add(1); });
                         }}));
            }
        }
        for (auto& r : firsts) BOOST_REQUIRE(r.wait(patience));
        pool.close();
        pool.join();
        BOOST_REQUIRE_EQUAL(callbacks.load(), n / 2);
        BOOST_REQUIRE_EQUAL(seen_callbacks, n / 2);
        BOOST_REQUIRE_EQUAL(follow_ups.load(), n);
    }
}

BOOST_AUTO_TEST_CASE(imap_unordered_with_chunksize_one_never_misses_a_chunk,
                     *boost::unit_test::timeout(300)) {
    // The consumer parks and wakes once per few items; each chunk is published without the
    // stream's lock. A missed chunk shows up as a TimeoutError from next(patience).
    const auto until = stress::deadline_in(4);
    std::vector<std::int64_t> in(20000);
    std::iota(in.begin(), in.end(), 0);
    const std::int64_t expect = std::accumulate(in.begin(), in.end(), std::int64_t{0});
    int rounds = 0;
    while (std::chrono::steady_clock::now() < until) {
        pypool::ThreadPool pool(rounds % 3 + 1);
        auto it = pool.imap_unordered([](std::int64_t x) { return x; }, in, 1);
        std::int64_t sum = 0;
        std::size_t count = 0;
        while (auto v = it.next(patience)) {
            sum += *v;
            ++count;
        }
        BOOST_REQUIRE_EQUAL(count, in.size());
        BOOST_REQUIRE_EQUAL(sum, expect);
        ++rounds;
    }
}

BOOST_AUTO_TEST_CASE(imap_unordered_consumed_on_a_worker_never_misses_a_chunk,
                     *boost::unit_test::timeout(300)) {
    // The consumer is a worker of the pool: it helps while it waits (help_while_not).
    const auto until = stress::deadline_in(3);
    std::vector<std::int64_t> in(5000);
    std::iota(in.begin(), in.end(), 0);
    const std::int64_t expect = std::accumulate(in.begin(), in.end(), std::int64_t{0});
    pypool::ThreadPool pool(2);
    while (std::chrono::steady_clock::now() < until) {
        auto r = pool.apply_async([&pool, &in] {
            std::int64_t sum = 0;
            auto it = pool.imap_unordered([](std::int64_t x) { return x; }, in, 1);
            while (auto v = it.next(patience)) sum += *v;
            return sum;
        });
        BOOST_REQUIRE_EQUAL(r.get(patience), expect);
    }
}

BOOST_AUTO_TEST_CASE(imap_unordered_iterators_dropped_mid_stream_wait_for_running_chunks,
                     *boost::unit_test::timeout(300)) {
    // Destroying the iterator races chunks that finish lock-free: it must wait for the
    // running ones (they touch the stream) and must not hang.
    const auto until = stress::deadline_in(3);
    std::vector<int> in(1000);
    std::iota(in.begin(), in.end(), 0);
    pypool::ThreadPool pool(2);
    std::atomic<int> ran{0};
    int rounds = 0;
    while (std::chrono::steady_clock::now() < until) {
        {
            auto it = pool.imap_unordered(
                [&ran](int x) {
                    ran.fetch_add(1);
                    return x;
                },
                in, 1);
            for (int k = 0; k < rounds % 17; ++k)
                if (!it.next(patience)) break;
        }  // dropped here
        ++rounds;
    }
    BOOST_TEST(ran.load() > 0);
}

// imap (ordered) publishes finished chunks without the stream's lock too (a flag the
// consumer reads at the head, in order), and with the default window the consumer hands
// chunks over in batches: the same three races as imap_unordered's above, in order.

BOOST_AUTO_TEST_CASE(imap_with_chunksize_one_never_misses_a_chunk_and_keeps_order,
                     *boost::unit_test::timeout(300)) {
    const auto until = stress::deadline_in(4);
    std::vector<std::int64_t> in(20000);
    std::iota(in.begin(), in.end(), 0);
    int rounds = 0;
    while (std::chrono::steady_clock::now() < until) {
        pypool::ThreadPool pool(rounds % 3 + 1);
        // every third round an explicit window: one chunk refilled per chunk consumed
        auto it = rounds % 3 == 2
                      ? pool.imap([](std::int64_t x) { return x; }, in,
                                  pypool::IMapOptions{.max_in_flight = 3})
                      : pool.imap([](std::int64_t x) { return x; }, in);
        std::int64_t expect = 0;
        while (auto v = it.next(patience)) {
            BOOST_REQUIRE_EQUAL(*v, expect);
            ++expect;
        }
        BOOST_REQUIRE_EQUAL(expect, static_cast<std::int64_t>(in.size()));
        ++rounds;
    }
}

BOOST_AUTO_TEST_CASE(imap_consumed_on_a_worker_never_misses_a_chunk,
                     *boost::unit_test::timeout(300)) {
    const auto until = stress::deadline_in(3);
    std::vector<std::int64_t> in(5000);
    std::iota(in.begin(), in.end(), 0);
    const std::int64_t expect = std::accumulate(in.begin(), in.end(), std::int64_t{0});
    pypool::ThreadPool pool(2);
    while (std::chrono::steady_clock::now() < until) {
        auto r = pool.apply_async([&pool, &in] {
            std::int64_t sum = 0;
            std::int64_t next = 0;
            auto it = pool.imap([](std::int64_t x) { return x; }, in);
            while (auto v = it.next(patience)) {
                if (*v != next++) return std::int64_t{-1};  // out of order
                sum += *v;
            }
            return sum;
        });
        BOOST_REQUIRE_EQUAL(r.get(patience), expect);
    }
}

BOOST_AUTO_TEST_CASE(imap_iterators_dropped_mid_stream_wait_for_running_chunks,
                     *boost::unit_test::timeout(300)) {
    const auto until = stress::deadline_in(3);
    std::vector<int> in(1000);
    std::iota(in.begin(), in.end(), 0);
    pypool::ThreadPool pool(2);
    std::atomic<int> ran{0};
    int rounds = 0;
    while (std::chrono::steady_clock::now() < until) {
        {
            auto it = pool.imap(
                [&ran](int x) {
                    ran.fetch_add(1);
                    return x;
                },
                in);
            for (int k = 0; k < rounds % 300; ++k)  // past the first batch refill at times
                if (!it.next(patience)) break;
        }  // dropped here
        ++rounds;
    }
    BOOST_TEST(ran.load() > 0);
    pool.close();
    pool.join();
    BOOST_TEST(pool.stats().queued == 0u);
}

BOOST_AUTO_TEST_CASE(line_sized_states_freed_on_other_threads_stay_aligned_and_intact,
                     *boost::unit_test::timeout(300)) {
    // States of 57-64 bytes come from slabs of cache lines (src/state_alloc.cpp). Threads
    // allocate bursts, write a pattern, and hand them to a neighbour that checks the pattern
    // and frees them: magazines move through the depot, and bursts larger than the depot
    // keeps send blocks back to their slabs (and slabs to the system) while others are cut.
    constexpr int kThreads = 4;
    constexpr std::size_t kSize = 64;
    const auto until = stress::deadline_in(2);
    struct Mailbox {
        std::mutex m;
        std::vector<unsigned char*> blocks;
    };
    std::vector<Mailbox> boxes(kThreads);
    std::atomic<bool> bad{false};
    std::atomic<std::int64_t> freed{0};
    auto check_and_free = [&](std::vector<unsigned char*>& got) {
        for (unsigned char* p : got) {
            const unsigned char tag = p[0];
            for (std::size_t i = 1; i < kSize; ++i)
                if (p[i] != static_cast<unsigned char>(tag + i)) bad = true;
            pypool::detail::state_free(p, kSize);
        }
        freed += static_cast<std::int64_t>(got.size());
        got.clear();
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::vector<unsigned char*> mine, got;
            unsigned round = 0;
            while (std::chrono::steady_clock::now() < until) {
                const std::size_t burst = (++round % 7 == 0) ? 5000 : 100;
                for (std::size_t i = 0; i < burst; ++i) {
                    auto* p = static_cast<unsigned char*>(pypool::detail::state_alloc(kSize));
                    if (reinterpret_cast<std::uintptr_t>(p) % 64 != 0) bad = true;
                    const auto tag = static_cast<unsigned char>(t * 31 + i);
                    for (std::size_t j = 0; j < kSize; ++j) p[j] = static_cast<unsigned char>(tag + j);
                    mine.push_back(p);
                }
                {
                    std::lock_guard lock(boxes[(t + 1) % kThreads].m);
                    auto& b = boxes[(t + 1) % kThreads].blocks;
                    b.insert(b.end(), mine.begin(), mine.end());
                }
                mine.clear();
                {
                    std::lock_guard lock(boxes[t].m);
                    got.swap(boxes[t].blocks);
                }
                check_and_free(got);
            }
        });
    }
    for (auto& th : threads) th.join();
    for (auto& b : boxes) check_and_free(b.blocks);
    BOOST_TEST(!bad.load());
    BOOST_TEST(freed.load() > 0);
}
