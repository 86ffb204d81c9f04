// Stress for ProcessPool (issue 12): 10,000 mixed tasks (values, exceptions, maps, callbacks)
// with random crashes (segfault, abort, _exit) end each exactly once with the outcome its
// kind implies, every callback runs exactly once, and the stats add up; also with worker
// recycling on every start method, and with terminate() in the middle. Seeds are printed
// (replay with PYPOOL_STRESS_SEED); PYPOOL_STRESS_SCALE scales the task counts.
#include "process_test_util.hpp"
#include "stress_common.hpp"

#include <signal.h>
#include <unistd.h>

#include <cereal/types/vector.hpp>

#include <csignal>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace utf = boost::unit_test;
using namespace std::chrono_literals;

namespace pstress {

enum Kind : int { value = 0, throws = 1, segfault = 2, aborts = 3, exits = 4 };

int work(int kind, int x) {
    switch (kind) {
        case throws: throw std::invalid_argument("bad " + std::to_string(x));
        case segfault: {
            if (PYPOOL_TEST_SANITIZED) std::signal(SIGSEGV, SIG_DFL);
            volatile int* p = nullptr;
            *p = x;
            return 0;
        }
        case aborts: std::abort();
        case exits: ::_exit(x % 100 + 1);
        default: return x * 2 + 1;
    }
}
int item(int x) {
    if (x < 0) throw std::invalid_argument("negative");
    return x * 3;
}

Kind pick(std::mt19937_64& rng) {
    const auto r = rng() % 1000;
    if (r < 8) return segfault;  // 0.8% + 0.2% + 0.2% = 1.2% crashes
    if (r < 10) return aborts;
    if (r < 12) return exits;
    if (r < 100) return throws;
    return value;
}

/// What one task should end with, checked against what it ended with.
struct Expect {
    Kind kind = value;
    int x = 0;
    bool is_map = false;
    bool map_has_negative = false;
    std::vector<int> map_input;
};

enum class Outcome { value_ok, wrong_value, invalid_argument, broken, cancelled, other };

template <class T>
Outcome outcome_of(const pypool::AsyncResult<T>& r, const Expect& e) {
    if (r.cancelled()) return Outcome::cancelled;
    try {
        const auto& v = r.get();
        if constexpr (std::is_same_v<T, int>) {
            return v == e.x * 2 + 1 ? Outcome::value_ok : Outcome::wrong_value;
        } else {
            if (v.size() != e.map_input.size()) return Outcome::wrong_value;
            for (std::size_t i = 0; i < v.size(); ++i)
                if (v[i] != e.map_input[i] * 3) return Outcome::wrong_value;
            return Outcome::value_ok;
        }
    } catch (const std::invalid_argument&) {
        return Outcome::invalid_argument;
    } catch (const pypool::BrokenProcessPool&) {
        return Outcome::broken;
    } catch (const pypool::CancelledError&) {
        return Outcome::cancelled;
    } catch (...) {
        return Outcome::other;
    }
}

bool outcome_fits(Outcome o, const Expect& e, bool terminated) {
    if (o == Outcome::cancelled) return terminated;
    if (e.is_map) return e.map_has_negative ? o == Outcome::invalid_argument : o == Outcome::value_ok;
    switch (e.kind) {
        case value: return o == Outcome::value_ok;
        case throws: return o == Outcome::invalid_argument;
        default: return o == Outcome::broken;
    }
}

struct RunConfig {
    std::size_t tasks = 10'000;
    pypool::StartMethod method = pypool::StartMethod::forkserver;
    std::optional<std::size_t> max_tasks_per_child;
    bool terminate_midway = false;
    int processes = 3;
};

void run(const char* name, const RunConfig& cfg) {
    std::mt19937_64 rng(stress::seed_for(name));
    stress::Ledger ledger;
    auto o = ptest::options(cfg.processes, cfg.method);
    o.max_tasks_per_child = cfg.max_tasks_per_child;
    std::vector<pypool::AsyncResult<int>> singles;
    std::vector<pypool::MapResult<int>> maps;
    std::vector<Expect> single_expect, map_expect;
    std::vector<stress::Entry*> single_entry, map_entry;
    std::size_t accepted = 0, crashes = 0;
    const std::size_t terminate_at = cfg.terminate_midway ? cfg.tasks / 2 : cfg.tasks + 1;
    {
        pypool::ProcessPool pool(o);
        for (std::size_t i = 0; i < cfg.tasks; ++i) {
            if (i == terminate_at) break;
            const bool with_callbacks = rng() % 2 == 0;
            stress::Entry& entry = ledger.open(with_callbacks);
            auto on_value = [&entry](const auto&) { ++entry.callbacks; };
            auto on_error = [&entry](std::exception_ptr) { ++entry.callbacks; };
            if (rng() % 20 == 0) {  // a map of a few items, some with a failing item
                Expect e;
                e.is_map = true;
                const std::size_t n = 1 + rng() % 6;
                for (std::size_t k = 0; k < n; ++k) {
                    const int v = (rng() % 30 == 0) ? -1 : static_cast<int>(rng() % 1000);
                    e.map_has_negative = e.map_has_negative || v < 0;
                    e.map_input.push_back(v);
                }
                pypool::MapOptions<int> mo;
                mo.chunksize = 1 + rng() % 3;
                if (with_callbacks) {
                    mo.callback = on_value;
                    mo.error_callback = on_error;
                }
                maps.push_back(pool.map_async(item, e.map_input, std::move(mo)));
                map_expect.push_back(std::move(e));
                map_entry.push_back(&entry);
            } else {
                Expect e;
                e.kind = pick(rng);
                e.x = static_cast<int>(rng() % 100'000);
                crashes += e.kind >= segfault ? 1 : 0;
                pypool::Callbacks<int> cb;
                if (with_callbacks) {
                    cb.callback = on_value;
                    cb.error_callback = on_error;
                }
                singles.push_back(pool.apply_async(work, std::tuple{static_cast<int>(e.kind), e.x}, std::move(cb)));
                single_expect.push_back(e);
                single_entry.push_back(&entry);
            }
            ++accepted;
        }
        if (cfg.terminate_midway) {
            // let some finish, then stop everything
            for (std::size_t k = 0; k < singles.size() / 4; ++k) singles[k].wait(120s);
            pool.terminate();
        } else {
            pool.close();
        }
        pool.join();
        for (auto& r : singles) BOOST_TEST_REQUIRE(r.wait(300s), "a task never ended");
        for (auto& r : maps) BOOST_TEST_REQUIRE(r.wait(300s), "a map never ended");
        const auto s = pool.stats();
        BOOST_TEST(s.queued == 0U);
        BOOST_TEST(s.running == 0U);
        BOOST_TEST(s.callbacks_pending == 0U);
        if (!cfg.terminate_midway) BOOST_TEST(s.cancelled == 0U);
    }
    std::size_t bad = 0;
    auto account = [&](const auto& r, const Expect& e, stress::Entry& entry, std::size_t i) {
        const Outcome oc = outcome_of(r, e);
        if (oc == Outcome::cancelled) ++entry.cancelled; else ++entry.ran;
        if (!outcome_fits(oc, e, cfg.terminate_midway) && bad++ < 10)
            BOOST_ERROR("task " << i << " (kind " << e.kind << (e.is_map ? ", map" : "")
                                << ") ended with outcome " << static_cast<int>(oc));
    };
    for (std::size_t i = 0; i < singles.size(); ++i) account(singles[i], single_expect[i], *single_entry[i], i);
    for (std::size_t i = 0; i < maps.size(); ++i) account(maps[i], map_expect[i], *map_entry[i], i);
    BOOST_TEST(bad == 0U);
    const std::string v = ledger.verify();
    BOOST_TEST(v.empty(), v);
    BOOST_TEST(ledger.size() == accepted);
    BOOST_TEST_MESSAGE(name << ": " << accepted << " tasks, " << crashes << " crashes");
}

}  // namespace pstress

BOOST_AUTO_TEST_SUITE(stress_process)

BOOST_AUTO_TEST_CASE(ten_thousand_mixed_tasks_with_random_crashes_end_exactly_once, *utf::timeout(900)) {
    pstress::RunConfig cfg;
    cfg.tasks = stress::scaled(10'000);
    pstress::run("ten_thousand_mixed_tasks_with_random_crashes_end_exactly_once", cfg);
}

BOOST_AUTO_TEST_CASE(recycled_workers_on_every_start_method_lose_nothing, *utf::timeout(900)) {
    for (auto m : ptest::all_methods()) {
        BOOST_TEST_CONTEXT(ptest::method_name(m)) {
            pstress::RunConfig cfg;
            cfg.tasks = stress::scaled(m == pypool::StartMethod::spawn ? 1000 : 2000);
            cfg.method = m;
            cfg.max_tasks_per_child = 25;
            pstress::run("recycled_workers_on_every_start_method_lose_nothing", cfg);
        }
    }
}

BOOST_AUTO_TEST_CASE(terminate_in_the_middle_ends_every_task_exactly_once, *utf::timeout(900)) {
    pstress::RunConfig cfg;
    cfg.tasks = stress::scaled(4000);
    cfg.terminate_midway = true;
    pstress::run("terminate_in_the_middle_ends_every_task_exactly_once", cfg);
}

BOOST_AUTO_TEST_SUITE_END()
