// pypool-spinner: the load of scripts/bench --loaded. Busy-loops THREADS threads (default 2)
// of its own process until it gets SIGTERM or SIGINT, or its parent exits, so the benchmark
// shares the cores with another program as on a busy server.
//
// usage: pypool-spinner [THREADS]

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <sys/prctl.h>
#include <unistd.h>

namespace {
volatile std::sig_atomic_t stop = 0;
void on_signal(int) { stop = 1; }
}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    if (threads < 1 || threads > 1024) {
        std::fprintf(stderr, "usage: pypool-spinner [THREADS]  (1-1024)\n");
        return 2;
    }
    // Never outlive the benchmark script that started it.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) return 0;
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    std::atomic<unsigned long> sink{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i) {
        ts.emplace_back([&sink] {
            unsigned long x = 0;
            while (!stop) {
                for (int k = 0; k < 100000; ++k) x = x * 6364136223846793005UL + 1;
                sink.fetch_add(x & 1, std::memory_order_relaxed);
            }
        });
    }
    for (auto& t : ts) t.join();
    return 0;
}
