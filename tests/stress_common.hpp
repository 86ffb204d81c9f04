#pragma once
// Shared by the stress tests: seeds (printed, replayable with PYPOOL_STRESS_SEED), the time
// budget (scaled by PYPOOL_STRESS_SCALE) and a ledger that proves every accepted task ended
// exactly once and every callback ran exactly once.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <mutex>
#include <random>
#include <string>

namespace stress {

inline std::uint64_t seed_for(const char* test) {
    std::uint64_t seed = 0;
    if (const char* s = std::getenv("PYPOOL_STRESS_SEED"))
        seed = std::strtoull(s, nullptr, 10);
    else
        seed = std::random_device{}() * 0x9E3779B97F4A7C15ULL ^ std::random_device{}();
    std::cout << test << ": seed " << seed << " (replay with PYPOOL_STRESS_SEED=" << seed
              << ")" << std::endl;
    return seed;
}

inline double scale() {
    if (const char* s = std::getenv("PYPOOL_STRESS_SCALE")) {
        const double v = std::strtod(s, nullptr);
        if (v > 0) return v;
    }
    return 1.0;
}

/// A budget in seconds (scaled), so the whole suite stays within minutes on 2 cores.
inline std::chrono::steady_clock::time_point deadline_in(double seconds) {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(seconds * scale()));
}

inline std::size_t scaled(std::size_t n) {
    const auto v = static_cast<std::size_t>(static_cast<double>(n) * scale());
    return v == 0 ? 1 : v;
}

/// Per-task record: how often it ran, was cancelled, had its callback run.
struct Entry {
    std::atomic<int> ran{0};
    std::atomic<int> cancelled{0};  // observed through CancelledError delivery
    std::atomic<int> callbacks{0};  // callback or error_callback invocations
    bool has_callbacks = false;
};

class Ledger {
public:
    /// A new task id; its entry lives as long as the ledger (deque: stable addresses).
    Entry& open(bool has_callbacks, std::size_t* id = nullptr) {
        std::lock_guard lk(m_);
        entries_.emplace_back();
        entries_.back().has_callbacks = has_callbacks;
        if (id) *id = entries_.size() - 1;
        return entries_.back();
    }
    /// A task that was never accepted (submission threw): forget its entry.
    void reject(Entry& e) { e.ran = -1000; }

    /// Checks every accepted entry; returns a description of the first violation or "".
    std::string verify() {
        std::lock_guard lk(m_);
        std::size_t i = 0;
        for (auto& e : entries_) {
            const int ran = e.ran.load(), canc = e.cancelled.load(), cbs = e.callbacks.load();
            if (ran < 0) { ++i; continue; }  // rejected at submission
            if (ran + canc != 1)
                return "task " + std::to_string(i) + " ran " + std::to_string(ran) +
                       " times and was cancelled " + std::to_string(canc) + " times";
            if (e.has_callbacks && cbs != 1)
                return "task " + std::to_string(i) + " had its callbacks run " +
                       std::to_string(cbs) + " times";
            ++i;
        }
        return {};
    }
    std::size_t size() {
        std::lock_guard lk(m_);
        return entries_.size();
    }

private:
    std::mutex m_;
    std::deque<Entry> entries_;
};

}  // namespace stress
