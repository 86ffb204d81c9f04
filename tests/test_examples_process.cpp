// Runs the process pool example programs (issue 12; found through PYPOOL_EXAMPLES_DIR) and
// checks the shape of their output: line patterns, counts, and what must hold whatever the
// timing. Each run is bounded; a hanging example is killed and fails its case.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace utf = boost::unit_test;

namespace {

struct Run {
    int status = -1;  // exit status, -1 if killed (timeout) or not exited normally
    std::vector<std::string> lines;
};

/// Runs an example with arguments; stdout captured; killed after `timeout_s` seconds.
Run run_example(const std::string& name, std::vector<std::string> args, int timeout_s = 60) {
    const char* dir = std::getenv("PYPOOL_EXAMPLES_DIR");
    BOOST_REQUIRE_MESSAGE(dir != nullptr, "PYPOOL_EXAMPLES_DIR is not set");
    std::string path = std::string(dir) + "/" + name;
    args.insert(args.begin(), path);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(fds[1], 1);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    bool timed_out = false;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[4096];
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) break;  // end of file: the example and every worker closed stdout
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    if (timed_out) ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    BOOST_TEST(!timed_out, name << " did not finish within " << timeout_s << " s");
    Run r;
    r.status = !timed_out && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) r.lines.push_back(line);
    return r;
}

}  // namespace

BOOST_AUTO_TEST_CASE(process_followup_submits_one_follow_up_per_value_above_half, *utf::timeout(180)) {
    const Run r = run_example("process_followup", {"--seed", "1"});
    BOOST_TEST_REQUIRE(r.status == 0);
    const std::regex t1(R"(Task 1: ([0-9.e-]+))");
    const std::regex t2(R"(Task 2: value1=([0-9.e-]+), value2=([0-9.e-]+))");
    std::map<std::string, int> large_unfollowed;
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
            BOOST_TEST(large_unfollowed[m[1]] > 0, "follow-up before its task 1: " << line);
            --large_unfollowed[m[1]];
        } else {
            BOOST_ERROR("unexpected line: " << line);
        }
    }
    BOOST_TEST(task1_lines == 10);
    BOOST_TEST(task2_lines == large);
    // the seed fixes the values, whatever the timing and the process they ran in
    Run again = run_example("process_followup", {"--seed", "1"});
    std::multiset<std::string> a(r.lines.begin(), r.lines.end()), b(again.lines.begin(), again.lines.end());
    BOOST_TEST((a == b));
}

BOOST_AUTO_TEST_CASE(process_as_completed_prints_finished_tasks_then_the_timeout, *utf::timeout(180)) {
    const std::regex line(R"(Task=(\d): ([01]\.\d\d))");
    const std::regex timeout_line(R"(Timed out after 0\.5 s: (\d+) \(of 10\) futures unfinished)");
    const Run r = run_example("process_as_completed", {"--seed", "1"});
    BOOST_TEST_REQUIRE(r.status == 0);
    BOOST_TEST_REQUIRE(!r.lines.empty());
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_match(r.lines.back(), m, timeout_line), "last line: " << r.lines.back());
    const std::size_t unfinished = std::stoul(m[1]);
    BOOST_TEST(unfinished + (r.lines.size() - 1) == 10U);
    for (std::size_t i = 0; i + 1 < r.lines.size(); ++i) {
        std::smatch t;
        BOOST_TEST_REQUIRE(std::regex_match(r.lines[i], t, line), "unexpected line: " << r.lines[i]);
        BOOST_TEST(std::stod(t[2]) <= 0.51, "a task slower than the timeout finished before it: " << r.lines[i]);
    }
    // with a long timeout every task is printed once
    const Run all = run_example("process_as_completed", {"--seed", "1", "--timeout", "100"});
    BOOST_TEST_REQUIRE(all.status == 0);
    BOOST_TEST_REQUIRE(all.lines.size() == 10U);
    std::set<int> names;
    for (const auto& l : all.lines) {
        std::smatch t;
        BOOST_TEST_REQUIRE(std::regex_match(l, t, line), "unexpected line: " << l);
        names.insert(std::stoi(t[1]));
    }
    BOOST_TEST(names.size() == 10U);
}

BOOST_AUTO_TEST_CASE(process_many_functions_run_in_worker_processes, *utf::timeout(180)) {
    const Run r = run_example("process_many_functions", {});
    BOOST_TEST_REQUIRE(r.status == 0);
    BOOST_TEST_REQUIRE(r.lines.size() == 6U);
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_match(r.lines[0], m, std::regex(R"(Main process: (\d+))")));
    const std::string main_pid = m[1];
    const std::vector<std::string> values{
        "square(7) = 49", "greet('pypool') = 'Hello, pypool!'", "total([1, 2, 3, 4]) = 10",
        "word_lengths(['pool', 'process']) = {'pool': 4, 'process': 7}", "scale((1.5, -2.0), 4) = (6.0, -8.0)"};
    const std::regex tail(R"(.* \(process (\d+)\))");
    for (std::size_t i = 0; i < values.size(); ++i) {
        const std::string& l = r.lines[i + 1];
        BOOST_TEST(l.rfind(values[i] + " (process ", 0) == 0U, "line: " << l);
        BOOST_TEST_REQUIRE(std::regex_match(l, m, tail), "line: " << l);
        BOOST_TEST(m[1] != main_pid, "ran in the main process: " << l);
    }
}

BOOST_AUTO_TEST_CASE(process_crash_isolation_fails_only_the_bad_tasks, *utf::timeout(180)) {
    const Run r = run_example("process_crash_isolation", {});
    BOOST_TEST_REQUIRE(r.status == 0);
    BOOST_TEST_REQUIRE(r.lines.size() == 22U);
    for (int x = 0; x < 20; ++x) {
        const std::string& l = r.lines[static_cast<std::size_t>(x)];
        const std::string head = "risky(" + std::to_string(x) + ")";
        if (x % 7 == 3)
            BOOST_TEST(l.rfind(head + " failed: BrokenProcessPool: ", 0) == 0U, "line: " << l);
        else if (x == 12)
            BOOST_TEST(l == head + " failed: invalid_argument: x must not be 12");
        else
            BOOST_TEST(l == head + " = " + std::to_string(x * x));
    }
    BOOST_TEST(r.lines[20].rfind("never_returns() failed: TimeoutError: task exceeded", 0) == 0U,
               "line: " << r.lines[20]);
    BOOST_TEST(r.lines[21] == "finished: 16 succeeded, 3 crashed, 1 raised, 1 timed out");
}
