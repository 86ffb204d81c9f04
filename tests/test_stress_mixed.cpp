// Stress: random mixes of the pool's operations from several submitting threads. A ledger
// proves that every accepted task ended exactly once (ran, or was cancelled) and that every
// callback ran exactly once. Seeds are printed; replay with PYPOOL_STRESS_SEED.
#include <boost/test/unit_test.hpp>

#include <pypool/pypool.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
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

// ---- bulk work and futures: map_async, imap/imap_unordered, as_completed/wait ---------------

namespace {

/// Problems found on submitting threads (Boost.Test's checks are not thread-safe).
class Problems {
public:
    void add(std::string p) {
        std::lock_guard lk(m_);
        if (list_.size() < 20) list_.push_back(std::move(p));
        ++count_;
    }
    std::string summary() {
        std::lock_guard lk(m_);
        std::string s;
        for (const auto& p : list_) s += p + "; ";
        return s;
    }
    std::size_t count() {
        std::lock_guard lk(m_);
        return count_;
    }

private:
    std::mutex m_;
    std::vector<std::string> list_;
    std::size_t count_ = 0;
};

/// Per-item counters of one imap: read from the input, ran, delivered to the consumer.
struct ImapCounters {
    explicit ImapCounters(int n)
        : read(new std::atomic<int>[static_cast<std::size_t>(n)]()),
          ran(new std::atomic<int>[static_cast<std::size_t>(n)]()),
          delivered(new std::atomic<int>[static_cast<std::size_t>(n)]()) {}
    std::unique_ptr<std::atomic<int>[]> read, ran, delivered;
};

struct ItemError {
    int index;
};

class BulkHarness {
public:
    explicit BulkHarness(pypool::ThreadPool& pool) : pool_(pool) {}

    /// map_async over n items (some fail), with callbacks; maybe cancelled or waited on.
    void map_op(std::mt19937_64& rng) {
        const int n = static_cast<int>(rng() % 24);
        auto items = std::make_shared<std::vector<stress::Entry*>>();
        for (int i = 0; i < n; ++i) items->push_back(&ledger_.open(false));
        stress::Entry& cb = ledger_.open(true);
        std::vector<int> xs(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) xs[static_cast<std::size_t>(i)] = i;
        const std::uint64_t fail_mask = rng() % 4 == 0 ? rng() : 0;
        auto f = [items, fail_mask](int i) {
            (*items)[static_cast<std::size_t>(i)]->ran.fetch_add(1);
            if ((fail_mask >> (i % 64)) & 1U) throw ItemError{i};
            return i;
        };
        pypool::MapResult<int> m;
        try {
            m = pool_.map_async(f, std::move(xs),
                                {.chunksize = rng() % 4,
                                 .callback = [&cb, n, this](const std::vector<int>& v) {
                                     cb.callbacks.fetch_add(1);
                                     if (static_cast<int>(v.size()) != n) problems.add("map callback: wrong size");
                                 },
                                 .error_callback = [&cb](std::exception_ptr) { cb.callbacks.fetch_add(1); }});
        } catch (const pypool::ValueError&) {
            for (auto* e : *items) ledger_.reject(*e);
            ledger_.reject(cb);
            return;
        }
        cb.ran.fetch_add(1);  // the map was accepted
        const int what = static_cast<int>(rng() % 4);
        if (what == 0) {
            (void)m.cancel();
        } else if (what == 1) {
            try {
                const auto& v = m.get();
                if (static_cast<int>(v.size()) != n) problems.add("map: wrong size");
                if (fail_mask != 0) {
                    for (int i = 0; i < n; ++i)
                        if ((fail_mask >> (i % 64)) & 1U) problems.add("map: a failing item succeeded");
                }
            } catch (const ItemError& e) {
                // the lowest failing position
                for (int i = 0; i < e.index; ++i)
                    if ((fail_mask >> (i % 64)) & 1U) problems.add("map: not the lowest failing item");
            } catch (const pypool::CancelledError&) {
            }
        }
        std::lock_guard lk(m_);
        maps_.push_back(Map{m, items, &cb});
    }

    /// imap or imap_unordered over n items, consumed fully, partly, or dropped at once.
    void imap_op(std::mt19937_64& rng) {
        const int n = 1 + static_cast<int>(rng() % 40);
        auto c = std::make_shared<ImapCounters>(n);
        const bool ordered = rng() % 2 == 0;
        const int mode = static_cast<int>(rng() % 3);  // 0 fully, 1 partly, 2 dropped
        const int fail_every = 1 + static_cast<int>(rng() % 7);
        auto input = std::views::iota(0, n) | std::views::transform([c](int i) {
                         c->read[static_cast<std::size_t>(i)].fetch_add(1);
                         return i;
                     });
        auto f = [c, fail_every](int i) {
            c->ran[static_cast<std::size_t>(i)].fetch_add(1);
            if (i % fail_every == fail_every - 1) throw ItemError{i};
            return i;
        };
        const pypool::IMapOptions o{.chunksize = 1 + rng() % 4, .max_in_flight = rng() % 4};
        const int want = mode == 0 ? n : mode == 1 ? static_cast<int>(rng() % static_cast<std::uint64_t>(n)) : 0;
        int got = 0;
        int prev = -1;
        {
            std::optional<pypool::IMapIterator<int>> it;
            try {
                it.emplace(ordered ? pool_.imap(f, input, o) : pool_.imap_unordered(f, input, o));
            } catch (const pypool::ValueError&) {
                return;
            }
            while (got < want) {
                int idx = -1;
                try {
                    auto v = it->next();
                    if (!v) break;
                    idx = *v;
                } catch (const ItemError& e) {
                    idx = e.index;
                }
                if (idx < 0 || idx >= n) {
                    problems.add("imap: bad index");
                    break;
                }
                if (ordered && idx != prev + 1) problems.add("imap: out of order");
                prev = idx;
                c->delivered[static_cast<std::size_t>(idx)].fetch_add(1);
                ++got;
            }
            if (mode == 0) {
                try {
                    if (it->next().has_value()) problems.add("imap: more items than the input");
                } catch (...) {
                    problems.add("imap: error after the last item");
                }
            }
        }  // the iterator is gone: running chunks finished, queued ones never run
        if (got != want) problems.add("imap: ended early");
        for (int i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(i);
            const int rd = c->read[k].load(), rn = c->ran[k].load(), dl = c->delivered[k].load();
            if (rd > 1 || rn > rd || dl > rn || (mode == 0 && (rd != 1 || rn != 1 || dl != 1)))
                problems.add("imap item " + std::to_string(i) + ": read " + std::to_string(rd) + " ran " +
                             std::to_string(rn) + " delivered " + std::to_string(dl));
        }
        imaps.fetch_add(1);
    }

    /// Submits a few tasks, then as_completed or wait over them (with duplicates).
    void futures_op(std::mt19937_64& rng) {
        const int n = 1 + static_cast<int>(rng() % 8);
        std::vector<pypool::AsyncResult<int>> rs;
        for (int i = 0; i < n; ++i) {
            stress::Entry& e = ledger_.open(false);
            const int kind = static_cast<int>(rng() % 5);
            try {
                auto h = pool_.submit([&e, kind, i] {
                    e.ran.fetch_add(1);
                    if (kind == 0) throw ItemError{i};
                    if (kind == 1) std::this_thread::sleep_for(50us);  // lasts a little
                    return i;
                });
                rs.push_back(h);
                std::lock_guard lk(m_);
                tasks_.emplace_back(&e, h);
            } catch (const pypool::ValueError&) {
                ledger_.reject(e);
            }
        }
        if (rs.empty()) return;
        if (rng() % 4 == 0) (void)rs[rng() % rs.size()].cancel();
        rs.push_back(rs[0]);  // a duplicate: yielded/listed once
        const std::size_t distinct = rs.size() - 1;
        const int variant = static_cast<int>(rng() % 5);
        try {
            if (variant <= 1) {
                std::unordered_set<const void*> seen;
                auto run = [&](auto&& ac) {
                    for (auto& r : ac) {
                        if (!r.done()) problems.add("as_completed: yielded an unfinished result");
                        if (!seen.insert(r.state_ptr()).second) problems.add("as_completed: yielded twice");
                    }
                };
                if (variant == 0) {
                    run(pypool::as_completed(rs));
                    if (seen.size() != distinct) problems.add("as_completed: missed a result");
                } else {
                    try {
                        run(pypool::as_completed(rs, 1ms));
                    } catch (const pypool::TimeoutError&) {
                    }
                }
            } else {
                const auto when = variant == 2   ? pypool::ReturnWhen::AllCompleted
                                  : variant == 3 ? pypool::ReturnWhen::FirstCompleted
                                                 : pypool::ReturnWhen::FirstException;
                auto w = variant == 4 ? pypool::wait(rs, 1ms, when) : pypool::wait(rs, when);
                if (w.done.size() + w.not_done.size() != distinct) problems.add("wait: lost or doubled a result");
                if (when == pypool::ReturnWhen::AllCompleted && !w.not_done.empty())
                    problems.add("wait(AllCompleted): unfinished results");
                if (when == pypool::ReturnWhen::FirstCompleted && w.done.empty())
                    problems.add("wait(FirstCompleted): nothing done");
                for (auto& d : w.done)
                    if (!d.done()) problems.add("wait: an unfinished result in done");
            }
        } catch (const std::exception& e) {
            problems.add(std::string("futures: unexpected ") + e.what());
        }
    }

    /// After join(): every accepted item/task ended exactly once, every callback ran once.
    void verify() {
        {
            std::lock_guard lk(m_);
            for (auto& [e, h] : tasks_) {
                BOOST_REQUIRE(h.ready());
                if (h.cancelled()) e->cancelled.fetch_add(1);
            }
            for (auto& mp : maps_) {
                BOOST_REQUIRE(mp.handle.ready());
                if (mp.handle.cancelled())
                    for (auto* e : *mp.items) e->cancelled.fetch_add(1);
                if (!mp.handle.cancelled() && mp.handle.completed() != mp.handle.total())
                    problems.add("map: completed() != total()");
            }
        }
        const std::string ledger_problem = ledger_.verify();
        BOOST_TEST(ledger_problem.empty(), ledger_problem);
        BOOST_TEST(problems.count() == 0u, problems.summary());
        const auto s = pool_.stats();
        BOOST_TEST(s.queued == 0u);
        BOOST_TEST(s.running == 0u);
        BOOST_TEST(s.callbacks_pending == 0u);
        BOOST_TEST(s.completed + s.failed + s.cancelled == s.submitted);
    }

    Problems problems;
    std::atomic<std::size_t> imaps{0};
    std::size_t maps() {
        std::lock_guard lk(m_);
        return maps_.size();
    }
    std::size_t tasks() {
        std::lock_guard lk(m_);
        return tasks_.size();
    }

private:
    struct Map {
        pypool::MapResult<int> handle;
        std::shared_ptr<std::vector<stress::Entry*>> items;
        stress::Entry* cb;
    };
    pypool::ThreadPool& pool_;
    stress::Ledger ledger_;
    std::mutex m_;
    std::vector<Map> maps_;
    std::vector<std::pair<stress::Entry*, pypool::AsyncResult<int>>> tasks_;
};

void bulk_submitter(BulkHarness& h, std::uint64_t seed, std::chrono::steady_clock::time_point until) {
    std::mt19937_64 rng(seed);
    while (std::chrono::steady_clock::now() < until) {
        const int op = static_cast<int>(rng() % 3);
        if (op == 0)
            h.map_op(rng);
        else if (op == 1)
            h.imap_op(rng);
        else
            h.futures_op(rng);
    }
}

}  // namespace

BOOST_AUTO_TEST_CASE(bulk_and_futures_mix_ends_every_item_and_task_exactly_once,
                     *boost::unit_test::timeout(300)) {
    const std::uint64_t seed = stress::seed_for("bulk_futures_mix");
    pypool::ThreadPool pool(4);
    BulkHarness h(pool);
    const auto until = stress::deadline_in(10.0);
    std::vector<std::thread> threads;
    for (std::uint64_t t = 0; t < 3; ++t)
        threads.emplace_back(bulk_submitter, std::ref(h), seed + t, until);
    for (auto& t : threads) t.join();
    pool.close();
    pool.join();
    BOOST_TEST_MESSAGE("maps " << h.maps() << ", imaps " << h.imaps.load() << ", tasks " << h.tasks());
    h.verify();
}
