// Runs the bulk-work example programs (found through PYPOOL_EXAMPLES_DIR) with --seed 1 and
// --seed 2 and checks the shape of their output: line patterns, counts, the ordering that
// must hold whatever the timing, and that a seed fixes every value printed.
#include <boost/test/unit_test.hpp>

#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace utf = boost::unit_test;

namespace {

struct Run {
    int status = -1;
    std::string out;
    std::vector<std::string> lines;
};

std::string example_path(const std::string& name) {
    const char* dir = std::getenv("PYPOOL_EXAMPLES_DIR");
    BOOST_REQUIRE_MESSAGE(dir != nullptr, "PYPOOL_EXAMPLES_DIR is not set");
    return std::string(dir) + "/" + name;
}

// Runs the example with its stdout on a pipe (not a terminal).
Run run_example(const std::string& name, const std::string& args) {
    const std::string cmd = example_path(name) + " " + args;
    FILE* p = popen(cmd.c_str(), "r");
    BOOST_REQUIRE_MESSAGE(p != nullptr, "cannot run " + cmd);
    Run r;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) r.lines.push_back(line);
    return r;
}

// Runs the example with its stdout on a pseudo-terminal; returns everything it wrote.
Run run_on_terminal(const std::string& name, const std::string& seed) {
    const std::string path = example_path(name);
    int master = -1;
    const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    BOOST_REQUIRE_MESSAGE(pid >= 0, "forkpty failed");
    if (pid == 0) {
        execl(path.c_str(), path.c_str(), "--seed", seed.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    Run r;
    char buf[4096];
    for (;;) {
        const ssize_t n = read(master, buf, sizeof buf);
        if (n > 0) {
            r.out.append(buf, static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break;  // EIO once the child has closed the terminal
        }
    }
    close(master);
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// A float as Python's repr / std::to_chars print it: 0.123, 1e-05, 5.5e-07.
const std::string num = R"((\d+(?:\.\d+)?(?:e[-+]\d+)?))";
const std::regex first_line(">(\\d) generated " + num);
const std::regex follow_line(">>(\\d) with " + num + ", generated " + num);

double in_unit_interval(const std::string& text, const std::string& line) {
    const double v = std::stod(text);
    BOOST_TEST((v >= 0.0 && v < 1.0), "value out of [0, 1): " << line);
    return v;
}

// The shape shared by manual_followup and callback_followup: ten ">i generated v" lines
// (i = 0..9 once each), one ">>i with v, generated w" per v > 0.5, after its ">i" line and
// with the same v, none for v <= 0.5, and "All done." last. Returns the ">" lines' i in
// the order printed.
std::vector<int> check_followup_shape(const Run& r) {
    BOOST_TEST_REQUIRE(r.status == 0);
    BOOST_TEST_REQUIRE(!r.lines.empty());
    BOOST_TEST(r.lines.back() == "All done.");
    std::map<int, std::string> value_of;  // ">i generated v" seen: i -> v as printed
    std::map<int, int> follow_ups;        // i -> ">>i" lines seen
    std::vector<int> order;
    int large = 0;
    for (std::size_t k = 0; k + 1 < r.lines.size(); ++k) {
        const std::string& line = r.lines[k];
        std::smatch m;
        if (std::regex_match(line, m, first_line)) {
            const int i = std::stoi(m[1]);
            BOOST_TEST(value_of.count(i) == 0U, "second line for task " << i << ": " << line);
            value_of[i] = m[2];
            order.push_back(i);
            if (in_unit_interval(m[2], line) > 0.5) ++large;
        } else if (std::regex_match(line, m, follow_line)) {
            const int i = std::stoi(m[1]);
            const auto it = value_of.find(i);
            BOOST_TEST_REQUIRE((it != value_of.end()), "follow-up before its task: " << line);
            BOOST_TEST(it->second == m[2].str(), "follow-up got another value: " << line);
            BOOST_TEST(in_unit_interval(m[2], line) > 0.5, "follow-up of a small value: " << line);
            in_unit_interval(m[3], line);
            BOOST_TEST(++follow_ups[i] == 1, "second follow-up of task " << i << ": " << line);
        } else {
            BOOST_ERROR("unexpected line: " << line);
        }
    }
    BOOST_TEST(value_of.size() == 10U);
    for (int i = 0; i < 10; ++i) BOOST_TEST(value_of.count(i) == 1U, "no line for task " << i);
    BOOST_TEST(follow_ups.size() == static_cast<std::size_t>(large));
    return order;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// Every value depends only on the seed: the same seed prints the same lines (in an order
// that follows timing), another seed other values.
void check_followup_repeatable(const std::string& name, const Run& seed1, const Run& seed2) {
    const Run again = run_example(name, "--seed 1");
    BOOST_TEST_REQUIRE(again.status == 0);
    BOOST_TEST((sorted(again.lines) == sorted(seed1.lines)));
    BOOST_TEST((sorted(seed2.lines) != sorted(seed1.lines)));
}

const std::regex summary_line(R"(300/300 items in \d+\.\d s \(\d+ items/s\))");

}  // namespace

BOOST_AUTO_TEST_CASE(manual_followup_follows_up_each_large_value_from_the_main_thread,
                     *utf::timeout(60)) {
    const Run seed1 = run_example("manual_followup", "--seed 1");
    check_followup_shape(seed1);
    const Run seed2 = run_example("manual_followup", "--seed 2");
    check_followup_shape(seed2);
    check_followup_repeatable("manual_followup", seed1, seed2);
}

BOOST_AUTO_TEST_CASE(callback_followup_follows_up_each_large_value_from_the_callback,
                     *utf::timeout(60)) {
    const Run seed1 = run_example("callback_followup", "--seed 1");
    const std::vector<int> input_order{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    // the callback gets map_async's whole list, in input order
    BOOST_TEST((check_followup_shape(seed1) == input_order));
    const Run seed2 = run_example("callback_followup", "--seed 2");
    BOOST_TEST((check_followup_shape(seed2) == input_order));
    check_followup_repeatable("callback_followup", seed1, seed2);
    // both programs compute the same values from a seed
    BOOST_TEST((sorted(seed1.lines) == sorted(run_example("manual_followup", "--seed 1").lines)));
}

BOOST_AUTO_TEST_CASE(progress_bar_prints_only_a_summary_when_not_on_a_terminal,
                     *utf::timeout(60)) {
    for (const char* seed : {"--seed 1", "--seed 2"}) {
        const Run r = run_example("progress_bar", seed);
        BOOST_TEST_REQUIRE(r.status == 0);
        BOOST_TEST(r.out.find('\r') == std::string::npos, "a bar was drawn on a pipe");
        BOOST_TEST_REQUIRE(r.lines.size() == 1U, "output: " << r.out);
        BOOST_TEST(std::regex_match(r.lines[0], summary_line), "unexpected line: " << r.lines[0]);
    }
}

BOOST_AUTO_TEST_CASE(progress_bar_redraws_one_line_on_a_terminal, *utf::timeout(60)) {
    const Run r = run_on_terminal("progress_bar", "1");
    BOOST_TEST_REQUIRE(r.status == 0);
    // The terminal turns "\n" into "\r\n": split on both, dropping empty pieces.
    std::vector<std::string> pieces;
    std::string cur;
    for (char c : r.out) {
        if (c == '\r' || c == '\n') {
            if (!cur.empty()) pieces.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) pieces.push_back(cur);
    BOOST_TEST_REQUIRE(pieces.size() >= 2U, "output: " << r.out);
    const std::regex bar(R"(\[([#.]{30})\] (\d+)/300 +(\d+)% \d+ items/s, \d+\.\d s left )");
    int last_done = 0;
    for (std::size_t k = 0; k + 1 < pieces.size(); ++k) {
        std::smatch m;
        BOOST_TEST_REQUIRE(std::regex_match(pieces[k], m, bar), "not a bar: " << pieces[k]);
        const int done = std::stoi(m[2]);
        BOOST_TEST(done > last_done, "the bar went back: " << pieces[k]);
        BOOST_TEST(std::stoi(m[3]) == 100 * done / 300);
        BOOST_TEST(std::count(m[1].first, m[1].second, '#') == 30 * done / 300);
        last_done = done;
    }
    BOOST_TEST(last_done == 300);  // the last redraw shows the end
    BOOST_TEST(std::regex_match(pieces.back(), summary_line), "not a summary: " << pieces.back());
    // the bar is redrawn in place: each redraw starts with '\r', and only the summary
    // follows a newline
    BOOST_TEST(r.out.rfind("\r[", 0) == 0U);
    BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') == 2);
}
