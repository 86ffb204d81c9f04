// Whole mpirun jobs of pypool::mpi::Executor (issue 14): `-n 1` is a ValueError naming the
// command to use, a rank killed mid-run ends the job non-zero within seconds (Open MPI 4.1
// has no fault tolerance: never a hang), and the MPI example's output. mpirun is found
// through PYPOOL_MPIRUN, the helper next to this test, the example in PYPOOL_EXAMPLES_DIR.
// Every job is bounded by timeout(1).
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace utf = boost::unit_test;

namespace {

struct Job {
    int status = -1;  // exit status of the mpirun command (124: it hit the time bound)
    double seconds = 0;
    std::string output;  // stdout and stderr together
    std::vector<std::string> lines;
};

std::string here() {
    std::array<char, 4096> buf{};
    const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    std::string p(buf.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
    return p.substr(0, p.rfind('/'));
}

/// Runs `mpirun --allow-run-as-root --oversubscribe -n ranks program args` bounded by
/// timeout(1) (SIGKILL 5 s after bound_s).
Job mpirun(int ranks, const std::string& program, const std::string& args, int bound_s) {
    const char* mpirun = std::getenv("PYPOOL_MPIRUN");
    const std::string cmd = "timeout -k 5 " + std::to_string(bound_s) + " " +
                            (mpirun ? mpirun : "mpirun") +
                            " --allow-run-as-root --oversubscribe -n " + std::to_string(ranks) +
                            " " + program + " " + args + " 2>&1";
    Job j;
    const auto t0 = std::chrono::steady_clock::now();
    FILE* p = ::popen(cmd.c_str(), "r");
    BOOST_REQUIRE(p != nullptr);
    std::array<char, 4096> buf{};
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) j.output.append(buf.data(), n);
    const int st = ::pclose(p);
    j.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    j.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::istringstream in(j.output);
    for (std::string l; std::getline(in, l);) j.lines.push_back(l);
    BOOST_TEST_MESSAGE("$ " << cmd << "\n" << j.output << "(status " << j.status << ", "
                            << j.seconds << " s)");
    return j;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(mpi_jobs)

BOOST_AUTO_TEST_CASE(one_rank_is_a_value_error_naming_the_command_to_use, *utf::timeout(180)) {
    const Job j = mpirun(1, here() + "/mpi_job_helper", "single", 120);
    BOOST_TEST(j.status == 0, j.output);
    BOOST_TEST(j.output.find("ValueError: pypool::mpi::Executor needs at least 2 MPI ranks") !=
                   std::string::npos, j.output);
    BOOST_TEST(j.output.find("mpirun -n 4") != std::string::npos, j.output);
}

BOOST_AUTO_TEST_CASE(a_rank_killed_mid_run_ends_the_job_nonzero_within_seconds,
                     *utf::timeout(180)) {
    const Job j = mpirun(3, here() + "/mpi_job_helper", "kill", 120);
    BOOST_TEST(j.output.find("square 9") != std::string::npos, j.output);  // it did run
    BOOST_TEST(j.status != 0, j.output);
    BOOST_TEST(j.status != 124, "the job hung until the time bound: " << j.output);
    BOOST_TEST(j.status != 2, "the root carried on past the death: " << j.output);
    BOOST_TEST(j.seconds < 30.0, j.output);
    // Open MPI's message names the rank that died
    BOOST_TEST(std::regex_search(j.output, std::regex("rank [12]")), j.output);
}

BOOST_AUTO_TEST_CASE(terminate_ends_every_task_and_the_job_cleanly, *utf::timeout(180)) {
    const Job j = mpirun(3, here() + "/mpi_job_helper", "terminate", 120);
    BOOST_TEST(j.status == 0, j.output);
    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_search(j.output, m, std::regex(R"(ended (\d+), cancelled (\d+), done (\d+))")),
                       j.output);
    BOOST_TEST(m[1] == "20");
    BOOST_TEST(std::stoi(m[2]) >= 15);  // at most the few that ran before terminate() finished
}

BOOST_AUTO_TEST_CASE(submit_on_a_worker_rank_is_a_runtime_error, *utf::timeout(180)) {
    const Job j = mpirun(3, here() + "/mpi_job_helper", "worker_submit", 120);
    BOOST_TEST(j.status == 0, j.output);
    BOOST_TEST(j.output.find("root size 2") != std::string::npos, j.output);
    BOOST_TEST(j.output.find("rank 1: RuntimeError: pypool::mpi::Executor: tasks are submitted on "
                             "the root (rank 0) only") != std::string::npos, j.output);
}

BOOST_AUTO_TEST_CASE(mpi_many_functions_prints_every_job_from_a_worker_rank, *utf::timeout(180)) {
    const char* dir = std::getenv("PYPOOL_EXAMPLES_DIR");
    BOOST_REQUIRE(dir != nullptr);
    const Job j = mpirun(4, std::string(dir) + "/mpi_many_functions", "", 120);
    BOOST_TEST_REQUIRE(j.status == 0, j.output);
    BOOST_TEST_REQUIRE(j.lines.size() == 6U, j.output);
    BOOST_TEST(j.lines[0] == "Root rank 0 of 4");
    const std::set<std::string> want{
        "square(7) = 49", "greet('pypool') = 'Hello, pypool!'", "total([1, 2, 3, 4]) = 10",
        "word_lengths(['pool', 'rank']) = {'pool': 4, 'rank': 4}",
        "scale((1.5, -2.0), 4) = (6.0, -8.0)"};
    std::set<std::string> got;
    const std::regex tail(R"((.*) \(rank ([123])\))");
    for (std::size_t i = 1; i < j.lines.size(); ++i) {
        std::smatch m;
        BOOST_TEST_REQUIRE(std::regex_match(j.lines[i], m, tail), "line: " << j.lines[i]);
        got.insert(m[1]);
    }
    BOOST_TEST((got == want), j.output);
}

BOOST_AUTO_TEST_SUITE_END()
