#pragma once
// Shared by pypool-bench, peers-bench, process-bench and mpi-bench: the options, workload sizes,
// result checks, the RESULT/NOTE lines that scripts/bench reads and the JUnit report of --junit.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace pypool_bench {

/// The clock of every timed region.
using Clock = std::chrono::steady_clock;

/// Seconds from t0 to now.
inline double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// The command-line options of a bench program (each reads only the ones it accepts).
struct Config {
    bool smoke = false;          ///< --smoke: every workload tiny, results checked (never timings)
    int reps = 1;                ///< --reps N
    double scale = 1.0;          ///< --scale F: multiplies every full-size N
    double idle_seconds = 10.0;  ///< --idle-seconds S
    std::string junit;           ///< --junit FILE (empty: no report)
    std::set<std::string> only;  ///< --only LIST (empty: all workloads)
    std::set<std::string> libs;  ///< --libs LIST (main() sets the program's default first)
};
/// This program's options, set by main() from its command line.
inline Config cfg;

/// N for a workload: the full size scaled by --scale, or the smoke size.
inline std::size_t size_n(std::size_t full, std::size_t smoke) {
    if (cfg.smoke) return smoke;
    return std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(static_cast<double>(full) * cfg.scale)));
}

/// A wrong result: recorded against the current workload, never about timings.
struct CheckFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Throws CheckFailure(what) unless ok.
inline void check(bool ok, const std::string& what) {
    if (!ok) throw CheckFailure(what);
}

/// Prints "RESULT <workload> <library> <metric> <value>".
inline void result(const char* w, const char* lib, const char* metric, double value) {
    std::printf("RESULT %s %s %s %.6g\n", w, lib, metric, value);
    std::fflush(stdout);
}

/// Prints "NOTE <workload> <library> <text>": a comparison that is not run, and why.
inline void note(const char* w, const char* lib, const char* text) {
    std::printf("NOTE %s %s %s\n", w, lib, text);
    std::fflush(stdout);
}

/// Prints W3's p50_us and p99_us RESULT lines for the latencies lat (seconds; reordered).
inline void report_latencies(const char* lib, std::vector<double>& lat) {
    auto pct = [&lat](double p) {
        std::size_t k = std::min(lat.size() - 1, static_cast<std::size_t>(p * static_cast<double>(lat.size())));
        std::nth_element(lat.begin(), lat.begin() + static_cast<std::ptrdiff_t>(k), lat.end());
        return lat[k];
    };
    result("W3", lib, "p50_us", pct(0.50) * 1e6);
    result("W3", lib, "p99_us", pct(0.99) * 1e6);
}

/// W6's tree depth: a task per node, each waiting for its two children.
inline int w6_depth() { return cfg.smoke ? 8 : 16; }

/// The number of nodes (tasks) of a W6 tree of depth d.
inline std::int64_t w6_nodes(int d) { return (std::int64_t{1} << (d - 1)) * 2 - 1; }

/// W6's trees per repetition after the first: their median is W6's time_s and rate.
inline int w6_steady_trees() { return cfg.smoke ? 2 : 9; }

/// Runs W6 for lib: tree() runs one tree of w6_depth() and returns the nodes it counted;
/// each tree is timed and its count checked against w6_nodes(). The first tree, on a pool
/// (arena, executor) that has run no tree yet, is first_s: for every pool it includes the
/// scheduler's placement of threads that were parked, for pypool also the start of the
/// spare threads that stand in for blocked joins. Then w6_steady_trees() more on the same
/// pool: their median is time_s and nodes / time_s is rate, the steady state.
template <class Tree>
void w6_report(const char* lib, Tree&& tree) {
    auto timed_tree = [&tree] {
        const auto t0 = Clock::now();
        const std::int64_t r = tree();
        const double t = seconds_since(t0);
        check(r == w6_nodes(w6_depth()), "W6 node count");
        return t;
    };
    const double first = timed_tree();
    std::vector<double> ts;
    for (int i = 0; i < w6_steady_trees(); ++i) ts.push_back(timed_tree());
    std::nth_element(ts.begin(), ts.begin() + static_cast<std::ptrdiff_t>(ts.size() / 2), ts.end());
    const double t = ts[ts.size() / 2];
    result("W6", lib, "first_s", first);
    result("W6", lib, "time_s", t);
    result("W6", lib, "rate", static_cast<double>(w6_nodes(w6_depth())) / t);
}

/// Prints MEM's bytes_per_task RESULT line: resident growth from before to after over n tasks.
inline void mem_report(const char* lib, std::int64_t before, std::int64_t after, std::size_t n) {
    result("MEM", lib, "bytes_per_task", static_cast<double>(after - before) / static_cast<double>(n));
}

/// The non-empty items of a comma-separated list.
inline std::set<std::string> split_list(const std::string& s) {
    std::set<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.insert(item);
    }
    return out;
}

/// s with & < > " escaped for an XML attribute or text.
inline std::string xml_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

/// One workload's JUnit <testcase>: its time over all libraries and repetitions, and its failures.
struct CaseOutcome {
    std::string id;
    double seconds = 0;
    std::vector<std::string> failures;
};

/// Writes cases as one JUnit <testsuite> named suite to path; false if it cannot.
inline bool write_junit(const std::string& path, const char* suite, const std::vector<CaseOutcome>& cases) {
    std::ofstream out(path);
    if (!out) return false;
    std::size_t failed = 0;
    double total = 0;
    for (const auto& c : cases) {
        failed += c.failures.empty() ? 0 : 1;
        total += c.seconds;
    }
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    out << "<testsuites>\n<testsuite name=\"" << suite << "\" tests=\"" << cases.size() << "\" failures=\""
        << failed << "\" errors=\"0\" skipped=\"0\" time=\"" << total << "\">\n";
    for (const auto& c : cases) {
        out << "  <testcase classname=\"" << suite << "\" name=\"" << xml_escape(c.id) << "\" time=\"" << c.seconds
            << "\"";
        if (c.failures.empty()) {
            out << "/>\n";
        } else {
            std::string msg;
            for (const auto& f : c.failures) {
                if (!msg.empty()) msg += "; ";
                msg += f;
            }
            out << ">\n    <failure message=\"" << xml_escape(msg) << "\">" << xml_escape(msg)
                << "</failure>\n  </testcase>\n";
        }
    }
    out << "</testsuite>\n</testsuites>\n";
    return static_cast<bool>(out);
}

}  // namespace pypool_bench
