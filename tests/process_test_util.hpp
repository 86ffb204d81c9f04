#pragma once
// Shared by the process pool tests (issue 12): the custom main that calls
// pypool::process_main first (a worker or the fork server re-executes this test binary and
// must never reach Boost.Test), and bounded helpers over /proc for processes the tests do
// not own (workers), plus running a helper program with a bounded wait.
//
// Include it in exactly one translation unit per test executable, after defining nothing:
// the test executable is built with BOOST_TEST_NO_MAIN (see tests/meson.build).
#include "process_test_main.hpp"  // main(), PYPOOL_TEST_SANITIZED, ptest::all_methods()

#include <pypool/process.hpp>
#include <pypool/pypool.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ptest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline const char* method_name(pypool::StartMethod m) {
    switch (m) {
        case pypool::StartMethod::forkserver: return "forkserver";
        case pypool::StartMethod::spawn: return "spawn";
        case pypool::StartMethod::fork: return "fork";
    }
    return "?";
}

/// Options with `n` workers and the given start method.
inline pypool::ProcessPoolOptions options(int n, pypool::StartMethod m = pypool::StartMethod::forkserver) {
    pypool::ProcessPoolOptions o;
    o.processes = n;
    o.start_method = m;
    return o;
}

/// The state letter of /proc/<pid>/stat ('R', 'S', 'Z', ...), or 0 if no such process.
inline char proc_state(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    if (!std::getline(in, s)) return 0;
    const auto close = s.rfind(')');
    if (close == std::string::npos || close + 2 >= s.size()) return 0;
    return s[close + 2];
}

/// The parent pid from /proc/<pid>/stat, or -1.
inline pid_t proc_ppid(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    if (!std::getline(in, s)) return -1;
    const auto close = s.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(s.substr(close + 2));
    char state = 0;
    pid_t ppid = -1;
    rest >> state >> ppid;
    return ppid;
}

/// A live (not zombie) process with this pid exists.
inline bool alive(pid_t pid) {
    const char st = proc_state(pid);
    return st != 0 && st != 'Z' && st != 'X';
}

/// /proc/<pid>/comm without its newline ("" if gone).
inline std::string comm_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string s;
    std::getline(in, s);
    return s;
}

/// Every process whose ancestry reaches `root` (children, grandchildren, ...), from /proc.
inline std::set<pid_t> descendants(pid_t root) {
    std::vector<std::pair<pid_t, pid_t>> all;  // (pid, ppid)
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
        const std::string name = e.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        const pid_t p = static_cast<pid_t>(std::stol(name));
        all.emplace_back(p, proc_ppid(p));
    }
    std::set<pid_t> out{root};
    for (bool grew = true; grew;) {
        grew = false;
        for (auto [p, pp] : all)
            if (out.count(pp) && !out.count(p)) grew = out.insert(p).second || grew;
    }
    out.erase(root);
    return out;
}

/// Polls `pred` until it holds or `timeout` passes (for state outside this process, such as
/// another process exiting, which no latch can report). Returns the last value of `pred`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 20s) {
    const auto deadline = Clock::now() + timeout;
    while (!pred()) {
        if (Clock::now() > deadline) return pred();
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

/// A directory of this test binary's helper programs (built next to it).
inline std::string self_dir() {
    return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

/// A fresh temporary directory, removed by the destructor.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/pypool-ptest.XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        BOOST_REQUIRE(p != nullptr);
        path = p;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return path + "/" + name; }
};

/// The content of a file, or "" if it does not exist yet.
inline std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// A child program started with a pipe on its stdout; always reaped (SIGKILL on scope exit).
class Child {
public:
    explicit Child(std::vector<std::string> argv) {
        int fds[2];
        BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        pid_ = ::fork();
        BOOST_REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::dup2(fds[1], 1);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        out_ = fds[0];
    }
    ~Child() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
        if (out_ >= 0) ::close(out_);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    pid_t pid() const { return pid_; }

    /// Reads one line of the child's stdout within `timeout`; false at end of file or timeout.
    bool read_line(std::string& line, std::chrono::milliseconds timeout = 60s) {
        const auto deadline = Clock::now() + timeout;
        for (;;) {
            const auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return true;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) return false;
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char b[4096];
            const ssize_t n = ::read(out_, b, sizeof b);
            if (n <= 0) return false;
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }
    /// All remaining output until end of file or `timeout`.
    std::string read_all(std::chrono::milliseconds timeout = 60s) {
        std::string all, line;
        while (read_line(line, timeout)) all += line + "\n";
        all += buf_;
        buf_.clear();
        return all;
    }
    /// Waits for the child's exit within `timeout` (then kills it); its wait status, or -1.
    int wait(std::chrono::milliseconds timeout = 60s) {
        const auto deadline = Clock::now() + timeout;
        int st = 0;
        for (;;) {
            const pid_t r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                reaped_ = true;
                return st;
            }
            if (Clock::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &st, 0);
                reaped_ = true;
                return -1;
            }
            std::this_thread::sleep_for(5ms);
        }
    }
    void kill(int sig) { ::kill(pid_, sig); }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    bool reaped_ = false;
    std::string buf_;
};

/// The exception's what(), or "" if it is not a std::exception.
inline std::string what_of(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "";
    }
}

inline bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

}  // namespace ptest
