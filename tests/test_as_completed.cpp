// pypool::as_completed: completion order, finished results first, distinct results,
// timeouts (deadline from the call), cancelled results, the callback thread, workers.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pypool/pypool.hpp>

#include "test_gate.hpp"

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using pypool::AsyncResult;

namespace {


int blocked(std::shared_future<void> f, int v) {
    f.wait();
    return v;
}

}  // namespace

static_assert(std::ranges::input_range<pypool::AsCompleted<int>>);
static_assert(std::input_iterator<pypool::AsCompleted<int>::iterator>);

BOOST_AUTO_TEST_CASE(yields_every_result_once, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::vector<AsyncResult<int>> fs;
    for (int i = 0; i < 50; ++i) fs.push_back(pool.submit([](int x) { return x * 2; }, i));
    std::multiset<int> seen;
    for (auto& f : pypool::as_completed(fs)) seen.insert(f.result());
    BOOST_TEST(seen.size() == 50U);
    for (int i = 0; i < 50; ++i) BOOST_TEST(seen.count(i * 2) == 1U);
}

BOOST_AUTO_TEST_CASE(a_result_given_several_times_is_yielded_once, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto f = pool.submit([] {
        std::this_thread::sleep_for(5ms);
        return 3;
    });
    std::vector<AsyncResult<int>> same(3, f);
    int n = 0;
    for (auto& r : pypool::as_completed(same)) {
        BOOST_TEST((r == f));
        ++n;
    }
    BOOST_TEST(n == 1);
}

// Many results, each given three times, through a range with no size (so the set of those
// seen grows as it goes): each is yielded once, and finished ones in first-seen order.
BOOST_AUTO_TEST_CASE(repeats_in_a_long_unsized_range_are_yielded_once, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::vector<AsyncResult<int>> distinct;
    for (int i = 0; i < 1000; ++i) distinct.push_back(pool.submit([](int x) { return x; }, i));
    for (auto& f : distinct) f.wait();
    std::vector<AsyncResult<int>> repeated;
    for (int round = 0; round < 3; ++round)
        for (int i = 0; i < 1000; ++i) repeated.push_back(distinct[(i * 7 + round) % 1000]);
    auto unsized = repeated | std::views::filter([](const AsyncResult<int>&) { return true; });
    std::vector<int> got;
    for (auto& r : pypool::as_completed(unsized)) got.push_back(r.get());
    std::vector<int> expect;
    for (int i = 0; i < 1000; ++i) expect.push_back((i * 7) % 1000);  // the first round's order
    BOOST_TEST(got == expect, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(finished_results_come_first_in_input_order, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    auto pending = pool.submit(blocked, gate.future(), 0);
    auto a = pool.submit([] { return 1; });
    auto b = pool.submit([] { return 2; });
    a.wait();
    b.wait();
    std::vector<int> order;
    for (auto& f : pypool::as_completed({pending, b, a})) {
        order.push_back(f.result());
        if (order.size() == 2) gate.open();  // only after both finished ones were yielded
    }
    BOOST_TEST((order == std::vector<int>{2, 1, 0}));
}

BOOST_AUTO_TEST_CASE(yields_in_completion_order, *utf::timeout(60)) {
    pypool::ThreadPool pool(4);
    std::vector<std::unique_ptr<Gate>> gates;
    std::vector<AsyncResult<int>> fs;
    for (int i = 0; i < 4; ++i) {
        gates.push_back(std::make_unique<Gate>());
        fs.push_back(pool.submit(blocked, gates.back()->future(), i));
    }
    const int release[] = {2, 0, 3, 1};
    auto it_range = pypool::as_completed(fs);
    gates[static_cast<std::size_t>(release[0])]->open();
    std::vector<int> order;
    for (auto& f : it_range) {
        order.push_back(f.result());
        if (order.size() < 4) gates[static_cast<std::size_t>(release[order.size()])]->open();
    }
    BOOST_TEST((order == std::vector<int>{2, 0, 3, 1}));
}

BOOST_AUTO_TEST_CASE(timeout_message_counts_unyielded_results, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    auto done1 = pool.submit([] { return 1; });
    auto done2 = pool.submit([] { return 2; });
    done2.wait();
    auto running = pool.submit(blocked, gate.future(), 3);
    auto queued = pool.submit([] { return 4; });
    std::vector<AsyncResult<int>> fs{done1, queued, running, done2};
    std::vector<int> got;
    try {
        for (auto& f : pypool::as_completed(fs, 0s)) got.push_back(f.result());
        BOOST_FAIL("no TimeoutError");
    } catch (const pypool::TimeoutError& e) {
        BOOST_TEST(std::string(e.what()) == "2 (of 4) futures unfinished");
    }
    BOOST_TEST((got == std::vector<int>{1, 2}));
}

BOOST_AUTO_TEST_CASE(short_timeout_yields_finished_results_then_throws, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    auto done = pool.submit([] { return 1; });
    done.wait();
    auto slow = pool.submit(blocked, gate.future(), 2);
    std::vector<AsyncResult<int>> got;
    BOOST_CHECK_THROW(
        {
            for (auto& f : pypool::as_completed({done, slow}, 50ms)) got.push_back(f);
        },
        pypool::TimeoutError);
    BOOST_TEST(got.size() == 1U);
    BOOST_TEST((got[0] == done));
}

BOOST_AUTO_TEST_CASE(a_deadline_passed_before_iteration_throws_on_the_first_step, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    auto slow = pool.submit(blocked, gate.future(), 1);
    auto results = pypool::as_completed({slow}, 20ms);
    std::this_thread::sleep_for(60ms);  // the deadline passes before iteration starts
    BOOST_CHECK_THROW((void)results.begin(), pypool::TimeoutError);
}

BOOST_AUTO_TEST_CASE(an_empty_range_yields_nothing, *utf::timeout(60)) {
    std::vector<AsyncResult<int>> none;
    int n = 0;
    for ([[maybe_unused]] auto& f : pypool::as_completed(none)) ++n;
    for ([[maybe_unused]] auto& f : pypool::as_completed(none, 0s)) ++n;
    BOOST_TEST(n == 0);
}

BOOST_AUTO_TEST_CASE(empty_handle_throws_value_error, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::vector<AsyncResult<int>> fs{pool.submit([] { return 1; }), AsyncResult<int>{}};
    try {
        (void)pypool::as_completed(fs);
        BOOST_FAIL("no ValueError");
    } catch (const pypool::ValueError& e) {
        BOOST_TEST(std::string(e.what()) == "AsyncResult has no state");
    }
    BOOST_CHECK_THROW((void)pypool::as_completed({AsyncResult<int>{}}, 1s), pypool::ValueError);
}

BOOST_AUTO_TEST_CASE(a_result_cancelled_while_queued_is_yielded, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    Gate gate;
    auto running = pool.submit(blocked, gate.future(), 1);
    auto queued = pool.submit([] { return 2; });
    auto results = pypool::as_completed({running, queued});
    std::thread t([&] { queued.cancel(); });
    auto it = results.begin();
    BOOST_TEST((*it == queued));
    BOOST_TEST(it->cancelled());
    BOOST_CHECK_THROW(it->result(), pypool::CancelledError);
    t.join();
    gate.open();
    ++it;
    BOOST_TEST((*it == running));
    ++it;
    BOOST_TEST((it == std::default_sentinel));
}

BOOST_AUTO_TEST_CASE(yielded_results_can_be_moved_from, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::vector<AsyncResult<std::unique_ptr<int>>> fs;
    for (int i = 0; i < 5; ++i)
        fs.push_back(pool.submit([](int x) { return std::make_unique<int>(x); }, i));
    int sum = 0;
    for (auto& f : pypool::as_completed(fs)) sum += *std::move(f).result();
    BOOST_TEST(sum == 10);
}

BOOST_AUTO_TEST_CASE(works_on_a_worker_of_the_same_single_worker_pool, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto outer = pool.submit([&pool] {
        std::vector<AsyncResult<int>> inner;
        for (int i = 1; i <= 4; ++i) inner.push_back(pool.submit([](int x) { return x; }, i));
        int sum = 0;
        for (auto& f : pypool::as_completed(inner)) sum += f.result();
        return sum;
    });
    BOOST_TEST(outer.result() == 10);
}

BOOST_AUTO_TEST_CASE(on_the_callback_thread_it_throws_deadlock_error_when_it_would_block,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    Gate gate;
    auto needs_loop =
        pool.apply_async(blocked, std::tuple{gate.future(), 1}, {.callback = [](const int&) {}});
    auto finished = pool.submit([] { return 2; });
    finished.wait();
    std::promise<std::string> outcome;
    auto trigger = pool.submit([] { return 0; });
    trigger.add_done_callback([&](const AsyncResult<int>&) {
        std::string log;
        try {
            for (auto& f : pypool::as_completed({needs_loop, finished}))
                log += std::to_string(f.result());
            log += " returned";
        } catch (const pypool::DeadlockError&) {
            log += " deadlock";
        }
        outcome.set_value(log);
    });
    BOOST_TEST(outcome.get_future().get() == "2 deadlock");
}

BOOST_AUTO_TEST_CASE(results_of_several_pools_mix, *utf::timeout(60)) {
    pypool::ThreadPool a(2), b(2);
    std::vector<AsyncResult<int>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back((i % 2 ? a : b).submit([](int x) { return x; }, i));
    int n = 0;
    for ([[maybe_unused]] auto& f : pypool::as_completed(fs)) ++n;
    BOOST_TEST(n == 20);
}

BOOST_AUTO_TEST_CASE(many_concurrent_completions_are_each_yielded_once, *utf::timeout(60)) {
    pypool::ThreadPool pool(4);
    for (int round = 0; round < 20; ++round) {
        std::latch start(1);
        std::vector<AsyncResult<int>> fs;
        for (int i = 0; i < 100; ++i)
            fs.push_back(pool.submit([&start](int x) {
                start.wait();
                return x;
            }, i));
        auto results = pypool::as_completed(fs);
        start.count_down();
        std::vector<int> seen;
        for (auto& f : results) seen.push_back(f.result());
        std::sort(seen.begin(), seen.end());
        std::vector<int> expect(100);
        for (int i = 0; i < 100; ++i) expect[static_cast<std::size_t>(i)] = i;
        BOOST_TEST((seen == expect));
    }
}

BOOST_AUTO_TEST_CASE(abandoning_the_iteration_early_is_safe, *utf::timeout(60)) {
    pypool::ThreadPool pool(2);
    for (int round = 0; round < 50; ++round) {
        std::vector<AsyncResult<int>> fs;
        for (int i = 0; i < 20; ++i) fs.push_back(pool.submit([](int x) { return x; }, i));
        for ([[maybe_unused]] auto& f : pypool::as_completed(fs)) break;  // listeners unlinked
    }
}
