#pragma once
// Shared by pypool-bench and pypool-soak: reading /proc/self/status and process CPU time.

#include <cstdint>
#include <ctime>
#include <fstream>
#include <string>

namespace pypool_bench {

/// The value of a "Key:   123 kB" (or "Threads:  5") line of /proc/self/status; -1 if absent.
inline std::int64_t proc_status_value(const char* key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::string prefix = std::string(key) + ":";
    while (std::getline(in, line)) {
        if (line.compare(0, prefix.size(), prefix) == 0) {
            return std::stoll(line.substr(prefix.size()));
        }
    }
    return -1;
}

/// Resident memory now, in bytes.
inline std::int64_t rss_bytes() { return proc_status_value("VmRSS") * 1024; }
/// Peak resident memory, in bytes.
inline std::int64_t hwm_bytes() { return proc_status_value("VmHWM") * 1024; }
/// Number of threads of this process.
inline std::int64_t thread_count() { return proc_status_value("Threads"); }

/// CPU time used by the whole process (all threads), in seconds.
inline double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace pypool_bench
