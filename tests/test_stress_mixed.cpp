// Stress: random mixes of the pool's operations from several submitting threads. A ledger
// proves that every accepted task ended exactly once (ran, or was cancelled) and that every
// callback ran exactly once. Seeds are printed; replay with PYPOOL_STRESS_SEED.
#include <boost/test/unit_test.hpp>

#include <pypool/pypool.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "stress_common.hpp"

namespace {
using namespace std::chrono_literals;

class Harness {
public:
    explicit Harness(pypool::ThreadPool& pool) : pool_(pool) {}

    /// Submits one task (maybe with callbacks, maybe throwing, maybe waiting on a child).
    /// Returns false if the pool rejected it.
    bool submit(std::uint64_t r, int depth, bool callbacks,
                pypool::AsyncResult<int>* out = nullptr) {
        stress::Entry& e = ledger_.open(callbacks);
        const int mode = static_cast<int>(r % 10);
        auto body = [this, &e, mode, depth, r]() -> int {
            e.ran.fetch_add(1);
            if (mode == 0) throw std::runtime_error("task failed on purpose");
            if (mode == 1) throw 42;  // not derived from std::exception
            if (mode == 2 && depth < 3) {
                // a nested wait from a worker: the worker helps until the child is done
                auto child = track(r * 31 + 7, depth + 1, false);
                if (child.valid()) return child.get() + 1;
            }
            return 1;
        };
        try {
            pypool::AsyncResult<int> h;
            if (callbacks) {
                h = pool_.apply_async(
                    std::move(body), std::tuple{},
                    {.callback =
                         [this, &e, depth, r](const int&) {
                             e.callbacks.fetch_add(1);
                             if (r % 3 == 0 && depth < 3) (void)track(r / 3 + 1, depth + 1, true);
                         },
                     .error_callback = [&e](std::exception_ptr) { e.callbacks.fetch_add(1); }});
            } else {
                h = pool_.submit(std::move(body));
            }
            remember(e, h);
            if (out) *out = h;
            return true;
        } catch (const pypool::ValueError&) {
        } catch (const pypool::RuntimeError&) {
        }
        ledger_.reject(e);
        return false;
    }

    pypool::AsyncResult<int> track(std::uint64_t r, int depth, bool callbacks) {
        pypool::AsyncResult<int> out;
        if (!submit(r, depth, callbacks, &out)) return {};
        return out;
    }

    pypool::AsyncResult<int> pick(std::uint64_t r) {
        std::lock_guard lk(m_);
        if (handles_.empty()) return {};
        // mostly recent handles: those are the ones still queued
        const std::size_t n = handles_.size();
        const std::size_t window = n < 64 ? n : 64;
        return handles_[n - 1 - (r % window)].second;
    }

    /// After join(): count cancellations and check the ledger and the stats.
    void verify() {
        {
            std::lock_guard lk(m_);
            for (auto& [e, h] : handles_) {
                BOOST_REQUIRE(h.ready());
                if (h.cancelled()) e->cancelled.fetch_add(1);
            }
        }
        const std::string problem = ledger_.verify();
        BOOST_TEST(problem.empty(), problem);
        const auto s = pool_.stats();
        BOOST_TEST(s.queued == 0u);
        BOOST_TEST(s.running == 0u);
        BOOST_TEST(s.callbacks_pending == 0u);
        BOOST_TEST(s.submitted == handles_size() + applies.load());
        BOOST_TEST(s.completed + s.failed + s.cancelled == s.submitted);
        BOOST_TEST(apply_errors.load() == 0u);
    }

    std::atomic<std::size_t> applies{0};  // blocking apply() calls (not in the ledger)
    std::atomic<std::size_t> apply_errors{0};

    std::size_t handles_size() {
        std::lock_guard lk(m_);
        return handles_.size();
    }

private:
    void remember(stress::Entry& e, const pypool::AsyncResult<int>& h) {
        std::lock_guard lk(m_);
        handles_.emplace_back(&e, h);
    }

    pypool::ThreadPool& pool_;
    stress::Ledger ledger_;
    std::mutex m_;
    std::vector<std::pair<stress::Entry*, pypool::AsyncResult<int>>> handles_;
};

void submitter(pypool::ThreadPool& pool, Harness& h, std::uint64_t seed,
               std::chrono::steady_clock::time_point until) {
    std::mt19937_64 rng(seed);
    while (std::chrono::steady_clock::now() < until) {
        const std::uint64_t r = rng();
        const int op = static_cast<int>(r % 100);
        if (op < 40) {
            h.submit(rng(), 0, true);
        } else if (op < 55) {
            h.submit(rng(), 0, false);
        } else if (op < 65) {
            if (auto x = h.pick(rng()); x.valid()) x.cancel();
        } else if (op < 75) {
            if (auto x = h.pick(rng()); x.valid()) {
                try {
                    (void)x.get(1ms);
                } catch (...) {  // TimeoutError, CancelledError, the task's own error
                }
            }
        } else if (op < 85) {
            h.submit(rng() * 10 + 2, 0, (r & 1) != 0);  // mode 2: nested wait
        } else if (op < 90) {
            for (int i = 0; i < 20; ++i) h.submit(rng(), 0, (i & 1) != 0);
        } else {
            try {
                if (pool.apply([] { return 1; }) != 1) h.apply_errors.fetch_add(1);
                h.applies.fetch_add(1);
            } catch (...) {
                h.apply_errors.fetch_add(1);  // checked on the test thread
            }
        }
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_mix_from_three_threads_ends_every_task_exactly_once,
                     *boost::unit_test::timeout(300)) {
    const std::uint64_t seed = stress::seed_for("random_mix");
    pypool::ThreadPool pool(4);
    Harness h(pool);
    const auto until = stress::deadline_in(15.0);
    std::vector<std::thread> threads;
    for (std::uint64_t t = 0; t < 3; ++t)
        threads.emplace_back(submitter, std::ref(pool), std::ref(h), seed + t, until);
    for (auto& t : threads) t.join();
    pool.close();
    pool.join();
    BOOST_TEST_MESSAGE("tasks accepted: " << h.handles_size());
    h.verify();
}

BOOST_AUTO_TEST_CASE(random_mix_on_one_worker_with_nested_waits_does_not_deadlock,
                     *boost::unit_test::timeout(300)) {
    const std::uint64_t seed = stress::seed_for("one_worker_mix");
    pypool::ThreadPool pool(1);
    Harness h(pool);
    const auto until = stress::deadline_in(5.0);
    std::vector<std::thread> threads;
    for (std::uint64_t t = 0; t < 2; ++t)
        threads.emplace_back(submitter, std::ref(pool), std::ref(h), seed + t, until);
    for (auto& t : threads) t.join();
    pool.close();
    pool.join();
    h.verify();
}
