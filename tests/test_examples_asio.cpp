// Runs examples/asio_coroutine (found through PYPOOL_EXAMPLES_DIR) and checks its output.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace utf = boost::unit_test;

namespace {

struct Run {
    int status = -1;
    std::string out;
};

Run run_example(const std::string& name, const std::string& args) {
    const char* dir = std::getenv("PYPOOL_EXAMPLES_DIR");
    BOOST_REQUIRE_MESSAGE(dir != nullptr, "PYPOOL_EXAMPLES_DIR is not set");
    const std::string cmd = std::string(dir) + "/" + name + " " + args;
    Run r;
    FILE* p = popen(cmd.c_str(), "r");
    BOOST_REQUIRE_MESSAGE(p != nullptr, "cannot run " + cmd);
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> v;
    std::istringstream in(s);
    for (std::string line; std::getline(in, line);) v.push_back(line);
    return v;
}

// The example's (and its Python original's) formula.
long long work(long long i, long long seed) {
    const long long n = 1000 + (seed * 7919 + i * 104729) % 4000;
    long long s = 0;
    for (long long k = 0; k < n; ++k) s += k * k;
    return s % 1000;
}

}  // namespace

BOOST_AUTO_TEST_CASE(asio_coroutine_gathers_results_in_input_order, *utf::timeout(120)) {
    Run r = run_example("asio_coroutine", "--seed 5");
    if (r.status == 77) {
        BOOST_TEST_MESSAGE("asio_coroutine was built without coroutine support: skipped");
        return;
    }
    BOOST_TEST_REQUIRE(r.status == 0);
    const auto lines = lines_of(r.out);
    BOOST_TEST_REQUIRE(lines.size() == 11u);
    BOOST_TEST(std::regex_match(lines[0], std::regex(R"(seed 5: 8 tasks on 4 workers)")));
    long long total = 0;
    const std::regex task_line(R"(task (\d+) -> (\d+))");
    for (int i = 0; i < 8; ++i) {
        std::smatch m;
        BOOST_TEST_REQUIRE(std::regex_match(lines[static_cast<std::size_t>(i) + 1], m, task_line));
        BOOST_TEST(std::stoi(m[1]) == i);
        BOOST_TEST(std::stoll(m[2]) == work(i, 5));  // the same numbers Python prints
        total += std::stoll(m[2]);
    }
    std::smatch m;
    BOOST_TEST_REQUIRE(
        std::regex_match(lines[9], m, std::regex(R"(gathered 8 results, total (\d+))")));
    BOOST_TEST(std::stoll(m[1]) == total);
    BOOST_TEST(lines[10] == "caught: bad input");
}

BOOST_AUTO_TEST_CASE(asio_coroutine_output_depends_only_on_seed, *utf::timeout(120)) {
    Run a = run_example("asio_coroutine", "--seed 11");
    if (a.status == 77) return;
    Run b = run_example("asio_coroutine", "--seed 11");
    Run c = run_example("asio_coroutine", "--seed 12");
    BOOST_TEST(a.status == 0);
    BOOST_TEST(a.out == b.out);
    BOOST_TEST(a.out != c.out);
}

BOOST_AUTO_TEST_CASE(asio_coroutine_rejects_unknown_arguments, *utf::timeout(120)) {
    Run r = run_example("asio_coroutine", "--bogus 2>/dev/null");
    if (r.status == 77) return;
    BOOST_TEST(r.status == 2);
}
