// ProcessPool results (issue 12, API.md section 11): values computed in worker processes
// come back through the same AsyncResult / MapResult / IMapIterator types as ThreadPool's;
// callbacks run on the parent's callback thread and can submit follow-ups; map, starmap,
// imap and imap_unordered keep their order rules; wait and as_completed take results of a
// ThreadPool and a ProcessPool together.
#include "process_test_util.hpp"
#include "live_count.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>
#include <cereal/types/map.hpp>

#include <algorithm>
#include <functional>
#include <future>
#include <set>
#include <map>
#include <numeric>
#include <optional>
#include <ranges>

#include <range/v3/view/iota.hpp>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

namespace utf = boost::unit_test;
using namespace std::chrono_literals;

namespace ptest_results {

struct Point {
    int x = 0;
    double y = 0;
    std::string label;
    template <class Archive>
    void serialize(Archive& a) {
        a(x, y, label);
    }
    friend bool operator==(const Point&, const Point&) = default;
};

int add(int a, int b) { return a + b; }
int square(int x) { return x * x; }
int my_pid() { return static_cast<int>(::getpid()); }
int pid_of_item(int) { return static_cast<int>(::getpid()); }
void nothing(int) {}
std::string concat(const std::string& s, const std::vector<int>& v) {
    std::string out = s;
    for (int i : v) out += ":" + std::to_string(i);
    return out;
}
std::optional<int> half_if_even(int x) {
    if (x % 2) return std::nullopt;
    return x / 2;
}
std::variant<int, std::string> int_or_text(bool text) {
    if (text) return std::string("text");
    return 7;
}
Point move_point(const Point& p, int dx) { return Point{p.x + dx, p.y * 2, p.label + "!"}; }
std::map<std::string, int> count_words(const std::vector<std::string>& words) {
    std::map<std::string, int> m;
    for (const auto& w : words) ++m[w];
    return m;
}
std::tuple<int, int> divmod(int a, int b) { return {a / b, a % b}; }
int fails_on_odd(int x) {
    if (x % 2) throw std::invalid_argument("odd " + std::to_string(x));
    return x;
}
long long big_sum(const std::vector<long long>& v) { return std::accumulate(v.begin(), v.end(), 0LL); }
std::vector<char> echo_bytes(const std::vector<char>& v) { return v; }

using LiveArg = Live<0>;  // counts live copies in this process
int takes_live(const LiveArg&) { return 1; }

std::string thread_name() {
    char buf[32] = {};
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    return buf;
}

}  // namespace ptest_results

using namespace ptest_results;

BOOST_AUTO_TEST_SUITE(process_results)

BOOST_AUTO_TEST_CASE(apply_runs_the_function_in_another_process, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    BOOST_TEST(pool.size() == 2U);
    BOOST_TEST(pool.apply(add, std::tuple{2, 3}) == 5);
    const int pid = pool.apply(my_pid);
    BOOST_TEST(pid != static_cast<int>(::getpid()));
    BOOST_TEST(pid > 0);
}

BOOST_AUTO_TEST_CASE(captureless_lambdas_are_tasks, *utf::timeout(120)) {
    pypool::ProcessPool pool(1);
    BOOST_TEST(pool.apply([](int a) { return a * 10; }, std::tuple{4}) == 40);
    BOOST_TEST(pool.submit([](const std::string& s) { return s + s; }, std::string("ab")).result() == "abab");
}

BOOST_AUTO_TEST_CASE(arguments_and_results_of_many_types_cross_the_boundary, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    BOOST_TEST(pool.submit(concat, std::string("x"), std::vector<int>{1, 2, 3}).result() == "x:1:2:3");
    BOOST_TEST((pool.submit(half_if_even, 8).result() == std::optional<int>(4)));
    BOOST_TEST(!pool.submit(half_if_even, 7).result().has_value());
    BOOST_TEST((pool.submit(int_or_text, true).result() == std::variant<int, std::string>(std::string("text"))));
    BOOST_TEST((pool.submit(int_or_text, false).result() == std::variant<int, std::string>(7)));
    const Point p = pool.submit(move_point, Point{1, 1.5, "p"}, 2).result();
    BOOST_TEST((p == Point{3, 3.0, "p!"}));
    const auto words = pool.submit(count_words, std::vector<std::string>{"a", "b", "a"}).result();
    BOOST_TEST(words.at("a") == 2);
    BOOST_TEST(words.at("b") == 1);
    BOOST_TEST((pool.apply(divmod, std::tuple{17, 5}) == std::tuple<int, int>{3, 2}));
    std::vector<long long> big(200'000);
    std::iota(big.begin(), big.end(), 0LL);
    BOOST_TEST(pool.submit(big_sum, big).result() == 199'999LL * 200'000LL / 2);
    std::vector<char> bytes(3 << 20);  // larger than a pipe's buffer
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
    BOOST_TEST((pool.submit(echo_bytes, bytes).result() == bytes));
}

BOOST_AUTO_TEST_CASE(void_tasks_complete, *utf::timeout(120)) {
    pypool::ProcessPool pool(1);
    auto r = pool.submit(nothing, 1);
    r.get();
    BOOST_TEST(r.successful());
    pool.apply(nothing, std::tuple{2});
    const auto nones = pool.map(nothing, std::vector<int>{1, 2, 3});
    BOOST_TEST(nones.size() == 3U);
}

BOOST_AUTO_TEST_CASE(callback_runs_on_the_parents_callback_thread_before_get_returns, *utf::timeout(120)) {
    pypool::ProcessPoolOptions o;
    o.processes = 2;
    o.name_prefix = "prtest";
    pypool::ProcessPool pool(o);
    int seen = 0;                // touched only by callbacks, read after get()
    std::string cb_thread;
    pid_t cb_pid = 0;
    auto r = pool.apply_async(square, std::tuple{9}, {.callback = [&](const int& v) {
                                  seen = v;
                                  cb_thread = thread_name();
                                  cb_pid = ::getpid();
                              }});
    BOOST_TEST(r.get() == 81);
    BOOST_TEST(seen == 81);
    BOOST_TEST(cb_pid == ::getpid());
    BOOST_TEST(cb_thread == "prtest-loop");
}

BOOST_AUTO_TEST_CASE(error_callback_receives_the_tasks_exception, *utf::timeout(120)) {
    pypool::ProcessPool pool(1);
    std::string message;
    auto r = pool.apply_async(fails_on_odd, std::tuple{3},
                              {.error_callback = [&](std::exception_ptr e) { message = ptest::what_of(e); }});
    BOOST_CHECK_THROW(r.get(), std::invalid_argument);
    BOOST_TEST(message == "odd 3");
    BOOST_TEST(!r.successful());
}

BOOST_AUTO_TEST_CASE(callbacks_submit_follow_ups_into_the_same_pool, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    // Each callback submits the next step until depth 10, also after close().
    std::vector<pypool::AsyncResult<int>> chain;  // callbacks only (one thread), read after join
    std::function<void(const int&)> step;
    step = [&](const int& v) {
        if (v < 10) chain.push_back(pool.apply_async(add, std::tuple{v, 1}, {.callback = step}));
    };
    auto first = pool.apply_async(add, std::tuple{0, 1}, {.callback = step});
    pool.close();
    pool.join();
    BOOST_TEST(first.get() == 1);
    BOOST_TEST_REQUIRE(chain.size() == 9U);
    for (std::size_t i = 0; i < chain.size(); ++i) BOOST_TEST(chain[i].get() == static_cast<int>(i) + 2);
}

BOOST_AUTO_TEST_CASE(map_returns_results_in_input_order_for_every_chunksize, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    std::vector<int> xs(1000);
    std::iota(xs.begin(), xs.end(), 0);
    std::vector<int> want(xs.size());
    std::transform(xs.begin(), xs.end(), want.begin(), square);
    for (std::size_t cs : {0U, 1U, 7U, 1000U, 5000U}) BOOST_TEST((pool.map(square, xs, cs) == want), "chunksize " << cs);
    BOOST_TEST((pool.map(square, {1, 2, 3}) == std::vector<int>{1, 4, 9}));
    BOOST_TEST(pool.map(square, std::vector<int>{}).empty());
    BOOST_TEST((pool.map(square, ranges::views::iota(0, 5)) == std::vector<int>{0, 1, 4, 9, 16}));
}

BOOST_AUTO_TEST_CASE(map_uses_more_than_one_worker, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    std::set<int> pids;
    // Until both workers were seen (bounded): chunks go to whichever worker is free.
    ptest::eventually([&] {
        for (int p : pool.map(pid_of_item, ranges::views::iota(0, 200), 1)) pids.insert(p);
        return pids.size() >= 2;
    });
    BOOST_TEST(pids.size() == 2U);
    BOOST_TEST(!pids.count(static_cast<int>(::getpid())));
}

BOOST_AUTO_TEST_CASE(map_fails_with_the_lowest_failing_position_and_still_runs_the_rest, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    try {
        pool.map(fails_on_odd, std::vector<int>{0, 2, 5, 4, 3}, 1);
        BOOST_ERROR("map did not throw");
    } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()) == "odd 5");
    }
}

BOOST_AUTO_TEST_CASE(map_async_callback_gets_the_whole_vector, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    std::vector<int> got;
    auto r = pool.map_async(square, std::vector<int>{1, 2, 3, 4},
                            {.chunksize = 2, .callback = [&](const std::vector<int>& v) { got = v; }});
    BOOST_TEST((r.get() == std::vector<int>{1, 4, 9, 16}));
    BOOST_TEST((got == std::vector<int>{1, 4, 9, 16}));
    BOOST_TEST(r.completed() == 4U);
    BOOST_TEST(r.total() == 4U);
}

BOOST_AUTO_TEST_CASE(starmap_applies_each_tuple, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    BOOST_TEST((pool.starmap(add, pairs) == std::vector<int>{3, 7, 11}));
    BOOST_TEST((pool.starmap_async(add, pairs).get() == std::vector<int>{3, 7, 11}));
}

BOOST_AUTO_TEST_CASE(imap_keeps_input_order_and_imap_unordered_yields_each_once, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    std::vector<int> got;
    for (int v : pool.imap(square, ranges::views::iota(0, 300), 4)) got.push_back(v);
    std::vector<int> want(300);
    for (int i = 0; i < 300; ++i) want[static_cast<std::size_t>(i)] = i * i;
    BOOST_TEST((got == want));
    std::vector<int> un;
    for (int v : pool.imap_unordered(square, ranges::views::iota(0, 300), 3)) un.push_back(v);
    std::sort(un.begin(), un.end());
    BOOST_TEST((un == want));
}

BOOST_AUTO_TEST_CASE(imap_delivers_a_failing_item_at_its_position_and_goes_on, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    auto it = pool.imap(fails_on_odd, std::vector<int>{0, 1, 2}, 3);
    BOOST_TEST(it.next().value() == 0);
    BOOST_CHECK_THROW(it.next(), std::invalid_argument);
    BOOST_TEST(it.next().value() == 2);
    BOOST_TEST(!it.next().has_value());
}

BOOST_AUTO_TEST_CASE(wait_and_as_completed_mix_thread_and_process_results, *utf::timeout(120)) {
    pypool::ThreadPool threads(2);
    pypool::ProcessPool procs(2);
    std::vector<pypool::Future<int>> fs{threads.submit(square, 3), procs.submit(square, 4),
                                        threads.submit(add, 1, 1), procs.submit(add, 2, 2)};
    std::multiset<int> seen;
    for (auto& f : pypool::as_completed(fs, 60s)) seen.insert(f.result());
    BOOST_TEST((seen == std::multiset<int>{9, 16, 2, 4}));
    auto w = pypool::wait(fs, 60s);
    BOOST_TEST(w.done.size() == 4U);
    BOOST_TEST(w.not_done.empty());
    auto first = pypool::wait({procs.submit(square, 5), threads.submit(square, 6)}, 60s,
                              pypool::ReturnWhen::FirstCompleted);
    BOOST_TEST(!first.done.empty());
}

BOOST_AUTO_TEST_CASE(done_callbacks_and_future_vocabulary_work, *utf::timeout(120)) {
    pypool::ProcessPool pool(1);
    auto f = pool.submit(square, 12);
    std::promise<int> seen;
    f.add_done_callback([&](const pypool::Future<int>& r) { seen.set_value(r.result()); });
    auto fut = seen.get_future();
    BOOST_TEST_REQUIRE((fut.wait_for(60s) == std::future_status::ready));
    BOOST_TEST(fut.get() == 144);
    BOOST_TEST(f.done());
    BOOST_TEST(!f.cancelled());
    BOOST_TEST(!f.exception());
    BOOST_TEST(f.result(10s) == 144);
}

BOOST_AUTO_TEST_CASE(stats_count_process_tasks, *utf::timeout(120)) {
    pypool::ProcessPool pool(2);
    std::vector<pypool::Future<int>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(pool.submit(fails_on_odd, i));
    for (auto& f : fs) f.wait();
    pool.close();
    pool.join();
    const auto s = pool.stats();
    BOOST_TEST(s.submitted == 20U);
    BOOST_TEST(s.completed == 10U);
    BOOST_TEST(s.failed == 10U);
    BOOST_TEST(s.queued == 0U);
    BOOST_TEST(s.running == 0U);
}

BOOST_AUTO_TEST_CASE(arguments_of_a_refused_task_are_destroyed_once, *utf::timeout(120)) {
    {
        pypool::ProcessPool pool(1);
        BOOST_TEST(pool.apply(takes_live, std::tuple{LiveArg{}}) == 1);
        BOOST_TEST(LiveArg::count.load() == 0);
        pool.close();
        // the task is built, then refused: its arguments must not outlive the throw
        BOOST_CHECK_THROW(pool.apply_async(takes_live, std::tuple{LiveArg{}}), pypool::ValueError);
        BOOST_TEST(LiveArg::count.load() == 0);
        pool.join();
    }
    BOOST_TEST(LiveArg::count.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
