// pypool::mpi::Executor (issue 14, API.md section 12), run under
// `mpirun --oversubscribe -n 3` and `-n 4` (tests/meson.build). Every rank runs this main:
// worker ranks serve inside the Executor's constructor and return; the root runs the cases.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#ifndef BOOST_TEST_NO_MAIN
#define BOOST_TEST_NO_MAIN
#endif
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pypool/futures.hpp>
#include <pypool/mpi.hpp>

namespace {

pypool::mpi::Executor* g_ex = nullptr;
pypool::mpi::Executor& ex() { return *g_ex; }
constexpr auto generous = std::chrono::seconds(60);

int world_rank() {
    int r = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}
int rank_after(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));  // work, not synchronisation
    return world_rank();
}
std::pair<int, int> rank_and_pid(int ms) { return {rank_after(ms), static_cast<int>(::getpid())}; }
int square(int x) { return x * x; }
long add(long a, long b) { return a + b; }
std::string shout(const std::string& s) { return s + "!"; }
int fails_on_odd(int x) {
    if (x % 2 != 0) throw std::invalid_argument("odd: " + std::to_string(x));
    return x;
}
struct Custom : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct Registered : std::runtime_error {
    explicit Registered(const std::string& s) : std::runtime_error(s) {}
};
int throws_custom(int) { throw Custom("custom trouble"); }
int throws_registered(int) { throw Registered("registered trouble"); }
int throws_int(int) { throw 42; }
int identity(int x) { return x; }

/// utime + stime of a process in seconds (/proc/<pid>/stat fields 14 and 15).
double cpu_seconds(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const auto close = s.rfind(')');
    BOOST_REQUIRE(close != std::string::npos);
    std::istringstream in(s.substr(close + 2));
    std::string field;
    unsigned long ut = 0, st = 0;
    for (int i = 3; i <= 15; ++i) {
        in >> field;
        if (i == 14) ut = std::stoul(field);
        if (i == 15) st = std::stoul(field);
    }
    return static_cast<double>(ut + st) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// Submits slow tasks until every worker rank has answered; rank -> pid.
std::vector<std::pair<int, int>> every_rank() {
    std::set<std::pair<int, int>> seen;
    for (int round = 0; round < 20 && seen.size() < ex().size(); ++round) {
        std::vector<pypool::AsyncResult<std::pair<int, int>>> fs;
        for (std::size_t i = 0; i < 4 * ex().size(); ++i) fs.push_back(ex().submit(rank_and_pid, 30));
        for (auto& f : fs) seen.insert(f.get(generous));
    }
    return {seen.begin(), seen.end()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(mpi_executor)

BOOST_AUTO_TEST_CASE(the_root_is_rank_0_and_its_size_is_the_worker_ranks) {
    int n = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    BOOST_TEST(static_cast<bool>(ex()));
    BOOST_TEST(ex().rank() == 0);
    BOOST_TEST(ex().size() == static_cast<std::size_t>(n - 1));
}

BOOST_AUTO_TEST_CASE(results_come_back_from_every_worker_rank) {
    const auto ranks = every_rank();
    BOOST_REQUIRE(ranks.size() == ex().size());
    for (std::size_t i = 0; i < ranks.size(); ++i) {
        BOOST_TEST(ranks[i].first == static_cast<int>(i) + 1);
        BOOST_TEST(ranks[i].second != static_cast<int>(::getpid()));
    }
    BOOST_TEST(ex().submit(add, 40L, 2L).get(generous) == 42L);
    BOOST_TEST(ex().apply(shout, std::tuple<std::string>{"hey"}) == "hey!");
    BOOST_TEST(ex().submit([](int x) { return x + 1; }, 1).get(generous) == 2);
}

BOOST_AUTO_TEST_CASE(exceptions_cross_ranks_as_for_process_pool) {
    BOOST_CHECK_EXCEPTION(ex().submit(fails_on_odd, 3).get(generous), std::invalid_argument,
                          [](const std::invalid_argument& e) { return std::string(e.what()) == "odd: 3"; });
    auto custom = ex().submit(throws_custom, 1);
    BOOST_CHECK_EXCEPTION(custom.get(generous), pypool::RemoteError, [](const pypool::RemoteError& e) {
        return e.type_name().find("Custom") != std::string::npos &&
               std::string(e.what()).find("custom trouble") != std::string::npos;
    });
    pypool::register_exception<Registered>();
    BOOST_CHECK_EXCEPTION(ex().submit(throws_registered, 1).get(generous), Registered,
                          [](const Registered& e) { return std::string(e.what()) == "registered trouble"; });
    BOOST_CHECK_EXCEPTION(ex().submit(throws_int, 1).get(generous), pypool::RemoteError,
                          [](const pypool::RemoteError& e) { return e.type_name() == "int"; });
    BOOST_TEST(ex().submit(identity, 7).get(generous) == 7);  // the ranks carry on
}

BOOST_AUTO_TEST_CASE(callbacks_on_the_root_submit_follow_ups) {
    std::promise<int> done;
    auto f = done.get_future();
    std::vector<pypool::AsyncResult<int>> follow;
    ex().apply_async(square, std::tuple<int>{3},
                     {.callback = [&](const int& v) {
                          // on the root's callback thread: submit the next step from here
                          ex().apply_async(square, std::tuple<int>{v},
                                           {.callback = [&](const int& w) { done.set_value(w); }});
                      }});
    BOOST_REQUIRE(f.wait_for(generous) == std::future_status::ready);
    BOOST_TEST(f.get() == 81);
    std::promise<std::string> err;
    auto ef = err.get_future();
    ex().apply_async(fails_on_odd, std::tuple<int>{5},
                     {.error_callback = [&](std::exception_ptr e) {
                          try {
                              std::rethrow_exception(e);
                          } catch (const std::invalid_argument& x) {
                              err.set_value(x.what());
                          } catch (...) {
                              err.set_value("wrong type");
                          }
                      }});
    BOOST_REQUIRE(ef.wait_for(generous) == std::future_status::ready);
    BOOST_TEST(ef.get() == "odd: 5");
}

BOOST_AUTO_TEST_CASE(map_and_starmap_across_ranks_keep_input_order) {
    std::vector<int> in(10'000);
    for (int i = 0; i < 10'000; ++i) in[static_cast<std::size_t>(i)] = i;
    const auto out = ex().map(square, in);
    BOOST_REQUIRE(out.size() == in.size());
    for (int i = 0; i < 10'000; ++i) BOOST_TEST_REQUIRE(out[static_cast<std::size_t>(i)] == i * i);
    BOOST_TEST(ex().map(shout, std::vector<std::string>{"a", "b"}) == (std::vector<std::string>{"a!", "b!"}));
    const std::vector<std::tuple<long, long>> pairs{{1, 2}, {3, 4}};
    BOOST_TEST(ex().starmap(add, pairs) == (std::vector<long>{3, 7}));
    BOOST_CHECK_THROW(ex().map(fails_on_odd, {2, 4, 5}), std::invalid_argument);
    auto async = ex().map_async(square, {1, 2, 3});
    BOOST_TEST(async.get(generous) == (std::vector<int>{1, 4, 9}));
}

BOOST_AUTO_TEST_CASE(imap_unordered_across_ranks_yields_every_item_once) {
    std::vector<int> in(2'000);
    for (int i = 0; i < 2'000; ++i) in[static_cast<std::size_t>(i)] = i;
    std::multiset<int> got;
    auto it = ex().imap_unordered(identity, in, 7);
    while (auto v = it.next(generous)) got.insert(*v);
    BOOST_TEST(got.size() == in.size());
    BOOST_TEST(std::set<int>(got.begin(), got.end()).size() == in.size());
    std::vector<int> ordered;
    for (int v : ex().imap(square, std::vector<int>{1, 2, 3})) ordered.push_back(v);
    BOOST_TEST(ordered == (std::vector<int>{1, 4, 9}));
    // the items really are spread over the ranks
    std::set<int> ranks;
    auto rit = ex().imap_unordered(rank_after, std::vector<int>(8 * ex().size(), 20));
    while (auto r = rit.next(generous)) ranks.insert(*r);
    BOOST_TEST(ranks.size() >= 2u);
}

BOOST_AUTO_TEST_CASE(as_completed_with_a_timeout_yields_then_times_out) {
    std::vector<pypool::AsyncResult<int>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(ex().submit(square, i));
    std::set<int> got;
    for (auto& f : pypool::as_completed(fs, generous)) got.insert(f.get());
    BOOST_TEST(got.size() == 20u);
    // one task longer than the timeout: the iteration ends with TimeoutError
    auto slow = ex().submit(rank_after, 1500);
    auto quick = ex().submit(square, 2);
    std::size_t yielded = 0;
    BOOST_CHECK_THROW(
        {
            for (auto& f : pypool::as_completed({slow, quick}, std::chrono::milliseconds(300))) {
                (void)f;
                ++yielded;
            }
        },
        pypool::TimeoutError);
    BOOST_TEST(yielded == 1u);
    BOOST_TEST(slow.get(generous) >= 1);
    const auto w = pypool::wait(std::vector{ex().submit(square, 5)}, generous);
    BOOST_TEST(w.done.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_hundred_thousand_small_tasks_each_run_exactly_once) {
    constexpr int n = 100'000;
    std::vector<pypool::AsyncResult<int>> fs;
    fs.reserve(n);
    for (int i = 0; i < n; ++i) fs.push_back(ex().submit(identity, i));
    std::vector<int> ledger(n, 0);
    for (auto& f : fs) {
        const int v = f.get(generous);
        BOOST_TEST_REQUIRE((v >= 0 && v < n));
        ++ledger[static_cast<std::size_t>(v)];
    }
    int wrong = 0;
    for (int c : ledger) wrong += c != 1;
    BOOST_TEST(wrong == 0);
    const auto s = ex().stats();
    BOOST_TEST(s.queued == 0u);
}

BOOST_AUTO_TEST_CASE(idle_ranks_use_under_five_percent_of_a_core) {
    const auto ranks = every_rank();
    BOOST_REQUIRE(ranks.size() == ex().size());
    std::vector<double> before;
    for (const auto& [r, pid] : ranks) before.push_back(cpu_seconds(pid));
    const double root_before = cpu_seconds(static_cast<int>(::getpid()));
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the idle period being measured
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (std::size_t i = 0; i < ranks.size(); ++i) {
        const double share = (cpu_seconds(ranks[i].second) - before[i]) / wall;
        BOOST_TEST_MESSAGE("rank " << ranks[i].first << " idle CPU " << share * 100 << "%");
        BOOST_TEST(share < 0.05, "rank " << ranks[i].first << " used " << share * 100 << "% of a core while idle");
    }
    const double root_share = (cpu_seconds(static_cast<int>(::getpid())) - root_before) / wall;
    BOOST_TEST(root_share < 0.05, "the root used " << root_share * 100 << "% of a core while idle");
}

BOOST_AUTO_TEST_CASE(a_worker_rank_answers_after_being_idle) {
    BOOST_TEST(ex().submit(square, 12).get(generous) == 144);
}

BOOST_AUTO_TEST_SUITE_END()

int main(int argc, char** argv) {
    pypool::mpi::Executor executor(argc, argv);
    if (!executor) return 0;  // a worker rank: it served until the root shut down
    g_ex = &executor;
    const int rc = boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
    executor.shutdown();
    return rc;
}
