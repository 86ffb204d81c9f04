// Runs the concurrent.futures example programs (found through PYPOOL_EXAMPLES_DIR) with
// --seed 1 and checks the shape of their output: line patterns, counts, and the ordering
// constraints that must hold whatever the timing.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace utf = boost::unit_test;

namespace {

struct Run {
    int status = -1;
    std::vector<std::string> lines;
};

Run run_example(const std::string& name, const std::string& args) {
    const char* dir = std::getenv("PYPOOL_EXAMPLES_DIR");
    BOOST_REQUIRE_MESSAGE(dir != nullptr, "PYPOOL_EXAMPLES_DIR is not set");
    const std::string cmd = std::string(dir) + "/" + name + " " + args;
    FILE* p = popen(cmd.c_str(), "r");
    BOOST_REQUIRE_MESSAGE(p != nullptr, "cannot run " + cmd);
    std::string out;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = pclose(p);
    Run r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) r.lines.push_back(line);
    return r;
}

std::size_t index_of(const std::vector<std::string>& lines, const std::string& line) {
    auto it = std::find(lines.begin(), lines.end(), line);
    BOOST_REQUIRE_MESSAGE(it != lines.end(), "missing line: " + line);
    return static_cast<std::size_t>(it - lines.begin());
}

const std::vector<std::string> task_order{">Task 1 is running", ">>Task 2 is running",
                                          ">Task 1 is done.", ">>Task 2 is done."};

// With sleeps only some of the order is guaranteed: task2 is submitted after task1 said it
// runs, and each task says "running" before "done".
void check_task_submits_task_constraints(const Run& r) {
    BOOST_TEST_REQUIRE(r.status == 0);
    BOOST_TEST_REQUIRE(r.lines.size() == 4U);
    std::multiset<std::string> got(r.lines.begin(), r.lines.end());
    BOOST_TEST((got == std::multiset<std::string>(task_order.begin(), task_order.end())));
    BOOST_TEST(r.lines[0] == ">Task 1 is running");
    BOOST_TEST(index_of(r.lines, ">>Task 2 is running") < index_of(r.lines, ">>Task 2 is done."));
}

}  // namespace

BOOST_AUTO_TEST_CASE(futures_followup_submits_one_follow_up_per_value_above_half,
                     *utf::timeout(120)) {
    const Run r = run_example("futures_followup", "--seed 1");
    BOOST_TEST_REQUIRE(r.status == 0);
    const std::regex t1(R"(Task 1: ([0-9.e-]+))");
    const std::regex t2(R"(Task 2: value1=([0-9.e-]+), value2=([0-9.e-]+))");
    std::map<std::string, int> large_unfollowed;  // task 1 values > 0.5 printed so far
    int task1_lines = 0, large = 0, task2_lines = 0;
    for (const auto& line : r.lines) {
        std::smatch m;
        if (std::regex_match(line, m, t1)) {
            ++task1_lines;
            const double v = std::stod(m[1]);
            BOOST_TEST((v >= 0.0 && v < 1.0), "value out of [0, 1): " << line);
            if (v > 0.5) {
                ++large;
                ++large_unfollowed[m[1]];
            }
        } else if (std::regex_match(line, m, t2)) {
            ++task2_lines;
            const double w = std::stod(m[2]);
            BOOST_TEST((w >= 0.0 && w < 1.0), "value out of [0, 1): " << line);
            // a follow-up comes after the line of the task whose value it got
            BOOST_TEST(large_unfollowed[m[1]] > 0, "follow-up before its task 1: " << line);
            --large_unfollowed[m[1]];
        } else {
            BOOST_ERROR("unexpected line: " << line);
        }
    }
    BOOST_TEST(task1_lines == 10);
    BOOST_TEST(task2_lines == large);
}

BOOST_AUTO_TEST_CASE(futures_followup_values_depend_only_on_the_seed, *utf::timeout(120)) {
    Run a = run_example("futures_followup", "--seed 1");
    Run b = run_example("futures_followup", "--seed 1");
    BOOST_TEST_REQUIRE(a.status == 0);
    BOOST_TEST_REQUIRE(b.status == 0);
    std::sort(a.lines.begin(), a.lines.end());
    std::sort(b.lines.begin(), b.lines.end());
    BOOST_TEST((a.lines == b.lines));  // same lines; only their order may follow timing
}

BOOST_AUTO_TEST_CASE(task_submits_task_with_the_pool_passed_by_reference, *utf::timeout(120)) {
    const Run forced = run_example("task_submits_task", "--seed 1 --deterministic");
    BOOST_TEST_REQUIRE(forced.status == 0);
    BOOST_TEST((forced.lines == task_order));
    check_task_submits_task_constraints(run_example("task_submits_task", "--seed 1"));
}

BOOST_AUTO_TEST_CASE(task_submits_task_with_the_pool_as_a_global, *utf::timeout(120)) {
    const Run forced = run_example("task_submits_task", "--seed 1 --global --deterministic");
    BOOST_TEST_REQUIRE(forced.status == 0);
    BOOST_TEST((forced.lines == task_order));
    check_task_submits_task_constraints(run_example("task_submits_task", "--seed 1 --global"));
}

BOOST_AUTO_TEST_CASE(as_completed_order_prints_every_task_once, *utf::timeout(120)) {
    const Run r = run_example("as_completed_order", "--seed 1");
    BOOST_TEST_REQUIRE(r.status == 0);
    BOOST_TEST_REQUIRE(r.lines.size() == 10U);
    const std::regex line(R"(Task=(\d): ([01]\.\d\d))");
    std::set<int> names;
    for (const auto& l : r.lines) {
        std::smatch m;
        BOOST_TEST_REQUIRE(std::regex_match(l, m, line), "unexpected line: " << l);
        names.insert(std::stoi(m[1]));
    }
    BOOST_TEST(names.size() == 10U);
    const Run again = run_example("as_completed_order", "--seed 1");
    std::multiset<std::string> a(r.lines.begin(), r.lines.end());
    std::multiset<std::string> b(again.lines.begin(), again.lines.end());
    BOOST_TEST((a == b));  // the seed fixes each task's value
}

BOOST_AUTO_TEST_CASE(as_completed_order_reports_a_timeout, *utf::timeout(120)) {
    const Run r = run_example("as_completed_order", "--seed 1 --timeout 0.01");
    BOOST_TEST_REQUIRE(r.status == 0);
    BOOST_TEST_REQUIRE(!r.lines.empty());
    BOOST_TEST(r.lines.back() == "Timed out waiting for a result");
    // A task faster than the timeout would be printed first (none is, with seed 1).
    const std::regex line(R"(Task=(\d): ([01]\.\d\d))");
    for (std::size_t i = 0; i + 1 < r.lines.size(); ++i)
        BOOST_TEST(std::regex_match(r.lines[i], line), "unexpected line: " << r.lines[i]);
}

BOOST_AUTO_TEST_CASE(as_completed_order_demo_timeout_fires_for_any_seed, *utf::timeout(120)) {
    // scripts/demo's second run (seed 003's point): a 50 ms timeout fires whatever the
    // seed; only tasks quicker than it print first.
    for (const char* seed : {"1", "2", "3", "42"}) {
        const Run r = run_example("as_completed_order", std::string("--seed ") + seed +
                                                            " --timeout 0.05");
        BOOST_TEST_REQUIRE(r.status == 0);
        BOOST_TEST_REQUIRE(!r.lines.empty());
        BOOST_TEST(r.lines.back() == "Timed out waiting for a result", "seed " << seed);
        BOOST_TEST(r.lines.size() < 10U);
        const std::regex line(R"(Task=(\d): (0\.\d\d))");
        for (std::size_t i = 0; i + 1 < r.lines.size(); ++i) {
            std::smatch m;
            BOOST_TEST_REQUIRE(std::regex_match(r.lines[i], m, line),
                               "unexpected line: " << r.lines[i]);
            BOOST_TEST(std::stod(m[2]) < 0.10, "a slow task came before the timeout");
        }
    }
}

BOOST_AUTO_TEST_CASE(submit_args_status_prints_results_then_a_status_table, *utf::timeout(120)) {
    const Run r = run_example("submit_args_status", "--seed 1");
    BOOST_TEST_REQUIRE(r.status == 0);
    const auto& L = r.lines;
    BOOST_TEST_REQUIRE(L.size() >= 3U + 4U + 4U);
    BOOST_TEST(L[0] == "Result is 13");
    BOOST_TEST(L[1] == "Result one is 13");
    BOOST_TEST(L[2] == "Result two is 5");
    // Status blocks: three lines and a blank one each; a finished task stays finished.
    const std::size_t table_end = L.size() - 4;
    BOOST_TEST_REQUIRE((table_end - 3) % 4 == 0U);
    const std::regex status(R"(Task ([0-2]) (has finished|is running\.\.\.))");
    bool finished[3] = {false, false, false};
    for (std::size_t b = 3; b < table_end; b += 4) {
        for (std::size_t i = 0; i < 3; ++i) {
            std::smatch m;
            BOOST_TEST_REQUIRE(std::regex_match(L[b + i], m, status), "unexpected line: " << L[b + i]);
            BOOST_TEST(std::stoul(m[1]) == i);
            const bool now = m[2] == "has finished";
            BOOST_TEST(!(finished[i] && !now), "task " << i << " went back to running");
            finished[i] = now;
        }
        BOOST_TEST(L[b + 3].empty());
    }
    BOOST_TEST(L[table_end] == "Task 0 was successful. Result is 13");
    BOOST_TEST(L[table_end + 1] == "Task 1 was successful. Result is 5");
    BOOST_TEST(L[table_end + 2] == "Task 2 failed!");
    BOOST_TEST(L[table_end + 3] == "Error: something went wrong");
}
