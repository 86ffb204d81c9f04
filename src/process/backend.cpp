// ProcessPool: worker processes, their channels, start methods (fork, spawn, forkserver),
// death, timeouts, recycling, and process_main. See docs/DESIGN.md, "Processes".
#include <utility>  // before Asio (see TOOLCHAIN.md)

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio_ext.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <pypool/detail/remote_channel.hpp>
#include <pypool/process.hpp>

#include "loop.hpp"
#include "process/internal.hpp"

extern char** environ;

namespace pypool::detail {
namespace {

constexpr const char* role_env = "PYPOOL_PROCESS";
constexpr int child_fd = 3;                  // the channel's number in a worker / server
constexpr auto hello_timeout = std::chrono::seconds(30);
constexpr int past_main_status = 86;         // a helper process ran past process_main

// ---- frames ---------------------------------------------------------------------------------
// Every message is a 16-byte header (kind, reserved, body size) and the body.
enum Kind : std::uint32_t {
    k_hello = 1,    // worker/server -> parent: u32 pid
    k_config,       // parent -> worker: u32 slot, str prefix, code initializer, u64 max_tasks
    k_init_ok,      // worker -> parent
    k_init_err,     // worker -> parent: encoded exception
    k_task,         // parent -> worker: code entry, code fn, args
    k_reply,        // worker -> parent: u8 retiring, reply bytes
    k_fork,         // parent -> server
    k_forked,       // server -> parent: u32 pid (+ the channel, SCM_RIGHTS)
    k_wait,         // parent -> server: u32 pid
    k_status,       // server -> parent: u32 wait status
};
struct Header {
    std::uint32_t kind = 0;
    std::uint32_t reserved = 0;
    std::uint64_t size = 0;
};
static_assert(sizeof(Header) == 16);

void put_u32(std::string& out, std::uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void put_u64(std::string& out, std::uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
void put_str(std::string& out, const std::string& s) {
    put_u32(out, static_cast<std::uint32_t>(s.size()));
    out += s;
}

// ---- raw fd I/O (the worker and server side; no Asio after fork) -------------------------------
bool write_all(int fd, const char* p, std::size_t n) noexcept {
    while (n > 0) {
        const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}
bool read_all(int fd, char* p, std::size_t n) noexcept {
    while (n > 0) {
        const ssize_t r = ::read(fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if (r == 0) return false;
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}
bool send_frame(int fd, std::uint32_t kind, const std::string& body) noexcept {
    Header h{kind, 0, body.size()};
    std::string buf(reinterpret_cast<const char*>(&h), sizeof h);
    buf += body;
    return write_all(fd, buf.data(), buf.size());
}
bool recv_frame(int fd, std::uint32_t& kind, std::string& body) {
    Header h;
    if (!read_all(fd, reinterpret_cast<char*>(&h), sizeof h)) return false;
    kind = h.kind;
    body.resize(h.size);
    return read_all(fd, body.data(), body.size());
}

/// A worker's next task: one frame, read with as few reads as it takes (the parent sends
/// nothing else until the reply, so nothing is left over).
bool recv_task(int fd, std::string& body) {
    static thread_local std::string buf(1 << 16, '\0');
    std::size_t have = 0;
    while (have < sizeof(Header)) {
        const ssize_t r = ::read(fd, buf.data() + have, buf.size() - have);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        have += static_cast<std::size_t>(r);
    }
    Header h;
    std::memcpy(&h, buf.data(), sizeof h);
    if (h.kind != k_task) return false;
    const std::size_t got = std::min<std::size_t>(have - sizeof h, h.size);
    body.assign(buf.data() + sizeof h, got);
    if (got < h.size) {
        body.resize(h.size);
        return read_all(fd, body.data() + got, h.size - got);
    }
    return true;
}

std::string describe_status(int status) {
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* abbrev = sigabbrev_np(sig);
        return "killed by signal " + std::to_string(sig) + " (SIG" + (abbrev ? abbrev : "?") + ")";
    }
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    return "ended with wait status " + std::to_string(status);
}

std::string self_exe() {
    std::array<char, 4096> buf{};
    const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    if (n <= 0) throw RuntimeError(std::string("ProcessPool: cannot resolve /proc/self/exe: ") + std::strerror(errno));
    return std::string(buf.data(), static_cast<std::size_t>(n));
}

// ---- the child side -----------------------------------------------------------------------------

/// Common set-up of a worker or the server right after fork or exec: default signal
/// dispositions, nothing blocked, the channel on fd 3 and no other inherited fd above it,
/// and (workers) death with the parent.
void become_child(int fd, pid_t expected_parent, bool pdeathsig) noexcept {
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        ::signal(sig, SIG_DFL);
    }
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    if (pdeathsig) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != expected_parent) ::_exit(1);  // the parent died before prctl
    }
    if (fd != child_fd) {
        if (::dup2(fd, child_fd) < 0) ::_exit(1);
        ::close(fd);
    }
    ::fcntl(child_fd, F_SETFD, 0);
    ::close_range(child_fd + 1, ~0U, 0);
}

[[noreturn]] void worker_exit(int code) noexcept {
    std::fflush(nullptr);
    ::_exit(code);
}

/// A worker's life: hello, config, initializer, then tasks until end of file.
[[noreturn]] void serve_worker(int fd) noexcept {
    {
        std::string hello;
        put_u32(hello, static_cast<std::uint32_t>(::getpid()));
        if (!send_frame(fd, k_hello, hello)) worker_exit(0);
    }
    std::uint32_t kind = 0;
    std::string body;
    std::uint64_t max_tasks = 0;
    try {
        if (!recv_frame(fd, kind, body) || kind != k_config) worker_exit(0);
        Reader r{body.data(), body.data() + body.size()};
        std::uint32_t slot = 0;
        std::string prefix, error;
        if (!r.u32(slot) || !r.str(prefix)) worker_exit(1);
        set_thread_name(prefix, "-" + std::to_string(slot));
        const void* init = read_code_ref(r, error);
        if (!error.empty() || !r.u64(max_tasks)) {
            std::string out;
            try {
                throw RuntimeError("cannot find the initializer in the worker: " + error);
            } catch (...) {
                encode_current_exception(out);
            }
            send_frame(fd, k_init_err, out);
            worker_exit(0);
        }
        if (init) {
            try {
                reinterpret_cast<void (*)()>(const_cast<void*>(init))();
            } catch (...) {
                std::string out;
                encode_current_exception(out);
                std::fflush(nullptr);
                send_frame(fd, k_init_err, out);
                worker_exit(0);
            }
        }
        std::fflush(nullptr);
        if (!send_frame(fd, k_init_ok, {})) worker_exit(0);
    } catch (...) {
        worker_exit(1);
    }
    std::uint64_t done = 0;
    std::string out;
    for (;;) {
        try {
            if (!recv_task(fd, body)) worker_exit(0);
            Reader r{body.data(), body.data() + body.size()};
            std::string error;
            out.assign(sizeof(Header), '\0');  // the header, written below
            out.push_back(0);                   // retiring flag, set below
            const void* entry = read_code_ref(r, error);
            const void* fn = error.empty() ? read_code_ref(r, error) : nullptr;
            if (!error.empty() || !entry) {
                out.push_back(reply_serialization);
                out += "cannot find the task's function in the worker: " +
                       (error.empty() ? std::string("no entry") : error);
            } else {
                auto e = reinterpret_cast<RemoteEntry>(const_cast<void*>(entry));
                e(fn, r.p, end_of(r), out);
            }
            ++done;
            const bool retiring = max_tasks != 0 && done >= max_tasks;
            out[sizeof(Header)] = retiring ? 1 : 0;
            std::fflush(nullptr);
            // One write for header and body, so the parent wakes once.
            Header h{k_reply, 0, out.size() - sizeof(Header)};
            std::memcpy(out.data(), &h, sizeof h);
            if (!write_all(fd, out.data(), out.size())) worker_exit(0);
            if (retiring) worker_exit(0);
        } catch (...) {
            worker_exit(1);  // out of memory in the loop itself: the parent sees a death
        }
    }
}

/// The fork server: forks workers on request, passes their channel back, reaps them
/// when asked; on end of file kills and reaps what is left and exits.
[[noreturn]] void serve_forkserver(int fd) noexcept {
    {
        std::string hello;
        put_u32(hello, static_cast<std::uint32_t>(::getpid()));
        if (!send_frame(fd, k_hello, hello)) ::_exit(0);
    }
    std::set<pid_t> children;
    std::uint32_t kind = 0;
    std::string body;
    for (;;) {
        bool ok = false;
        try {
            ok = recv_frame(fd, kind, body);
        } catch (...) {
        }
        if (!ok) break;
        if (kind == k_fork) {
            int sv[2];
            std::string reply;
            pid_t pid = -1;
            if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
                const pid_t me = ::getpid();
                pid = ::fork();
                if (pid == 0) {
                    ::__fpurge(stdout);
                    ::__fpurge(stderr);
                    ::close(sv[0]);
                    ::close(fd);
                    become_child(sv[1], me, true);
                    serve_worker(child_fd);
                }
                ::close(sv[1]);
            }
            if (pid > 0) children.insert(pid);
            put_u32(reply, static_cast<std::uint32_t>(pid > 0 ? pid : 0));
            Header h{k_forked, 0, reply.size()};
            std::string buf(reinterpret_cast<const char*>(&h), sizeof h);
            buf += reply;
            iovec iov{buf.data(), buf.size()};
            alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            if (pid > 0) {
                msg.msg_control = cbuf;
                msg.msg_controllen = sizeof cbuf;
                cmsghdr* c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                std::memcpy(CMSG_DATA(c), &sv[0], sizeof(int));
            }
            const ssize_t w = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
            if (pid > 0) ::close(sv[0]);
            if (w != static_cast<ssize_t>(buf.size())) break;
        } else if (kind == k_wait) {
            Reader r{body.data(), body.data() + body.size()};
            std::uint32_t pid = 0;
            int status = 0;
            if (r.u32(pid)) {
                while (::waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
                }
                children.erase(static_cast<pid_t>(pid));
            }
            std::string reply;
            put_u32(reply, static_cast<std::uint32_t>(status));
            if (!send_frame(fd, k_status, reply)) break;
        }
    }
    for (pid_t p : children) ::kill(p, SIGKILL);
    for (pid_t p : children) {
        int st = 0;
        while (::waitpid(p, &st, 0) < 0 && errno == EINTR) {
        }
    }
    ::_exit(0);
}

// ---- the parent side -----------------------------------------------------------------------

/// Spawns the program itself with the role in the environment and `fd` as its fd 3.
pid_t spawn_self(const char* role, int fd) {
    // posix_spawn's dup2 onto the same number would keep FD_CLOEXEC: move fd away from 3.
    int moved = -1;
    if (fd == child_fd) {
        moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
        if (moved < 0) throw RuntimeError(std::string("ProcessPool: fcntl: ") + std::strerror(errno));
        fd = moved;
    }
    const std::string exe = self_exe();
    std::vector<std::string> env_store;
    for (char** e = environ; e && *e; ++e) {
        if (std::strncmp(*e, role_env, std::strlen(role_env)) == 0 && (*e)[std::strlen(role_env)] == '=')
            continue;
        env_store.emplace_back(*e);
    }
    env_store.push_back(std::string(role_env) + "=" + role + ":" + std::to_string(::getpid()));
    std::vector<char*> envp;
    for (auto& s : env_store) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string argv0 = exe;
    char* argv[] = {argv0.data(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, child_fd);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (moved >= 0) ::close(moved);
    if (rc != 0) throw RuntimeError("ProcessPool: cannot start " + exe + ": " + std::strerror(rc));
    return pid;
}

/// Waits until fd is readable or the deadline; false on timeout.
bool wait_readable(int fd, std::optional<Clock::time_point> deadline) {
    for (;;) {
        int ms = -1;
        if (deadline) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
            ms = left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
        }
        pollfd p{fd, POLLIN, 0};
        const int r = ::poll(&p, 1, ms);
        if (r > 0) return true;
        if (r == 0) {
            if (!deadline || Clock::now() >= *deadline) return false;
            continue;
        }
        if (errno != EINTR) return true;  // let the read report the error
    }
}

pid_t reap_pid(pid_t pid, int& status) {
    pid_t r;
    while ((r = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    return r;
}

/// The one fork server of this process, shared by every forkserver pool.
class ForkServer {
public:
    static ForkServer& get() {
        static ForkServer* s = new ForkServer;  // never destroyed: pools may outlive statics
        return *s;
    }
    void acquire() {
        std::lock_guard lk(m_);
        if (refs_ == 0) start();
        ++refs_;
    }
    void release() noexcept {
        std::lock_guard lk(m_);
        if (--refs_ > 0) return;
        ::close(fd_);
        fd_ = -1;
        int st = 0;
        reap_pid(pid_, st);
        pid_ = -1;
    }
    /// Forks a worker; returns its pid and the parent's end of its channel.
    std::pair<pid_t, int> fork_worker() {
        std::lock_guard lk(m_);
        if (!send_frame(fd_, k_fork, {})) throw RuntimeError("ProcessPool: the fork server is gone");
        Header h;
        char pidbuf[4];
        iovec iov[2] = {{&h, sizeof h}, {pidbuf, sizeof pidbuf}};
        alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = 2;
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof cbuf;
        ssize_t n;
        while ((n = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL)) < 0 && errno == EINTR) {
        }
        if (n != static_cast<ssize_t>(sizeof h + 4) || h.kind != k_forked)
            throw RuntimeError("ProcessPool: the fork server is gone");
        std::uint32_t pid = 0;
        std::memcpy(&pid, pidbuf, 4);
        int fd = -1;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
        if (pid == 0 || fd < 0) {
            if (fd >= 0) ::close(fd);
            throw RuntimeError("ProcessPool: the fork server could not fork a worker");
        }
        return {static_cast<pid_t>(pid), fd};
    }
    /// Reaps a worker of the server (it exited or was killed); its wait status.
    int wait_worker(pid_t pid) {
        std::lock_guard lk(m_);
        std::string b;
        put_u32(b, static_cast<std::uint32_t>(pid));
        std::uint32_t kind = 0;
        std::string reply;
        if (!send_frame(fd_, k_wait, b) || !recv_frame(fd_, kind, reply) || kind != k_status ||
            reply.size() < 4)
            return 0;
        std::uint32_t st = 0;
        std::memcpy(&st, reply.data(), 4);
        return static_cast<int>(st);
    }

private:
    void start() {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            throw RuntimeError(std::string("ProcessPool: socketpair: ") + std::strerror(errno));
        pid_t pid = -1;
        try {
            pid = spawn_self("forkserver", sv[1]);
        } catch (...) {
            ::close(sv[0]);
            ::close(sv[1]);
            throw;
        }
        ::close(sv[1]);
        std::uint32_t kind = 0;
        std::string body;
        const bool ready = wait_readable(sv[0], Clock::now() + hello_timeout);
        if (!ready || !recv_frame(sv[0], kind, body) || kind != k_hello) {
            ::kill(pid, SIGKILL);
            ::close(sv[0]);
            int st = 0;
            reap_pid(pid, st);
            throw RuntimeError(std::string("ProcessPool: the fork server ") +
                               (ready ? "exited (" + describe_status(st) + ")" : "did not answer within 30 s") +
                               " before reaching pypool::process_main(argc, argv): call it as the "
                               "first line of main");
        }
        fd_ = sv[0];
        pid_ = pid;
    }

    std::mutex m_;
    int refs_ = 0;
    int fd_ = -1;
    pid_t pid_ = -1;
};

using Socket = boost::asio::local::stream_protocol::socket;

}  // namespace

/// One worker process and its channel, driven by one worker thread of the core (its proxy).
struct Slot {
    std::uint32_t index = 0;
    std::mutex m;         // guards pid/alive against process_kill_all
    pid_t pid = -1;
    bool alive = false;   // a process is in the slot (not yet reaped)
    std::optional<Socket> sock;
    std::string name;     // "<prefix>-<i>"
    std::string rbuf = std::string(1 << 16, '\0');  // the proxy's read buffer
};

class ProcessBackend {
public:
    explicit ProcessBackend(const ProcessPoolOptions& o) : options_(o) {
        if (const char* role = std::getenv(role_env); role && *role) {
            // A helper process that ran past process_main (missing or not first in main).
            std::fprintf(stderr,
                         "pypool: this process was started by a ProcessPool but did not call "
                         "pypool::process_main(argc, argv) as the first line of main\n");
            std::fflush(stderr);
            ::_exit(past_main_status);
        }
        int n = 0;
        if (o.processes) {
            if (*o.processes < 1) throw ValueError("Number of processes must be at least 1");
            n = *o.processes;
        } else {
            const unsigned hc = std::thread::hardware_concurrency();
            n = hc == 0 ? 1 : static_cast<int>(hc);
        }
        if (o.max_tasks_per_child && *o.max_tasks_per_child == 0)
            throw ValueError("max_tasks_per_child must be >= 1");
        if (o.task_timeout && o.task_timeout->count() <= 0)
            throw ValueError("task_timeout must be positive");
        for (int i = 0; i < n; ++i) {
            auto s = std::make_unique<Slot>();
            s->index = static_cast<std::uint32_t>(i);
            s->name = o.name_prefix + "-" + std::to_string(i);
            slots_.push_back(std::move(s));
        }
        if (o.start_method == StartMethod::forkserver) {
            ForkServer::get().acquire();
            uses_server_ = true;
        }
        append_code_ref(init_ref_, reinterpret_cast<const void*>(o.initializer));
    }
    ~ProcessBackend() {
        reap_all();
        if (uses_server_) ForkServer::get().release();
    }

    /// The core's initializer: binds the calling worker thread to a slot and starts its process.
    void attach();
    std::string call(RemoteEntry entry, const void* fn, std::string&& args);
    void check_usable() const {
        if (broken_.load(std::memory_order_acquire)) const_cast<ProcessBackend*>(this)->throw_broken();
    }
    void kill_all() noexcept {
        terminating_.store(true, std::memory_order_release);
        for (auto& s : slots_) {
            std::lock_guard lk(s->m);
            if (s->alive && s->pid > 0) ::kill(s->pid, SIGKILL);
        }
    }
    void reap_all() noexcept {
        for (auto& s : slots_) {
            std::lock_guard lk(s->m);
            if (s->alive) (void)reap_locked(*s);
        }
    }

private:
    /// Starts the slot's process and runs the handshake; throws RuntimeError naming the cause.
    void start(Slot& s);
    /// Closes the channel and reaps the slot's process; its wait status. Caller holds s.m.
    int reap_locked(Slot& s) noexcept {
        if (s.sock) {
            boost::system::error_code ec;
            s.sock->close(ec);
            s.sock.reset();
        }
        int st = 0;
        if (s.pid > 0) {
            if (uses_server_)
                st = ForkServer::get().wait_worker(s.pid);
            else
                reap_pid(s.pid, st);
        }
        s.alive = false;
        s.pid = -1;
        return st;
    }
    /// The slot's process died or must die: kill it, reap it, describe how it ended.
    std::string bury(Slot& s) noexcept {
        std::lock_guard lk(s.m);
        const pid_t pid = s.pid;
        if (pid > 0) ::kill(pid, SIGKILL);  // still a zombie at worst: the status stays
        const int st = reap_locked(s);
        try {
            return "worker process " + std::to_string(pid) + " (" + s.name + ") " + describe_status(st);
        } catch (...) {
            return {};
        }
    }
    /// The slot's worker is gone: start its replacement now (on the proxy thread, before
    /// the task's outcome is delivered). If it cannot start, the pool is broken; the task's
    /// own outcome stays what it was.
    void replace(Slot& s) noexcept {
        if (terminating_.load(std::memory_order_acquire) || broken_.load(std::memory_order_acquire))
            return;
        try {
            start(s);
        } catch (const std::exception& e) {
            try {
                set_broken(std::string("a replacement worker could not start: ") + e.what());
            } catch (...) {
                broken_.store(true, std::memory_order_release);
            }
        } catch (...) {
            broken_.store(true, std::memory_order_release);
        }
    }
    void set_broken(const std::string& why) {
        std::lock_guard lk(broken_m_);
        if (!broken_.load(std::memory_order_relaxed)) {
            broken_msg_ = why;
            broken_.store(true, std::memory_order_release);
        }
    }
    [[noreturn]] void throw_broken() {
        std::string msg;
        {
            std::lock_guard lk(broken_m_);
            msg = broken_msg_;
        }
        throw BrokenProcessPool(msg);
    }

    ProcessPoolOptions options_;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::atomic<std::size_t> next_slot_{0};
    std::atomic<bool> terminating_{false};
    std::atomic<bool> broken_{false};
    std::mutex broken_m_;
    std::string broken_msg_;
    bool uses_server_ = false;
    std::string init_ref_;
    boost::asio::io_context ioc_{1};  // owns the channels' sockets (used synchronously)
};

namespace {
thread_local Slot* tls_slot = nullptr;
thread_local ProcessBackend* tls_backend = nullptr;
}  // namespace

void ProcessBackend::attach() {
    const std::size_t i = next_slot_.fetch_add(1, std::memory_order_relaxed);
    Slot& s = *slots_.at(i);
    tls_slot = &s;
    tls_backend = this;
    start(s);
}

void ProcessBackend::start(Slot& s) {
    int parent_end = -1;
    pid_t pid = -1;
    if (options_.start_method == StartMethod::forkserver) {
        std::tie(pid, parent_end) = ForkServer::get().fork_worker();
    } else {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            throw RuntimeError(std::string("ProcessPool: socketpair: ") + std::strerror(errno));
        if (options_.start_method == StartMethod::fork) {
            const pid_t me = ::getpid();
            pid = ::fork();
            if (pid == 0) {
                // Output the parent had buffered but not written is the parent's to write.
                ::__fpurge(stdout);
                ::__fpurge(stderr);
                ::close(sv[0]);
                become_child(sv[1], me, true);
                serve_worker(child_fd);
            }
            if (pid < 0) {
                const int e = errno;
                ::close(sv[0]);
                ::close(sv[1]);
                throw RuntimeError(std::string("ProcessPool: fork: ") + std::strerror(e));
            }
        } else {
            try {
                pid = spawn_self("worker", sv[1]);
            } catch (...) {
                ::close(sv[0]);
                ::close(sv[1]);
                throw;
            }
        }
        ::close(sv[1]);
        parent_end = sv[0];
    }
    {
        std::lock_guard lk(s.m);
        s.pid = pid;
        s.alive = true;
        s.sock.emplace(ioc_);
        boost::system::error_code ec;
        s.sock->assign(boost::asio::local::stream_protocol(), parent_end, ec);
        if (ec) {
            ::close(parent_end);
            s.sock.reset();
        }
    }
    const int fd = s.sock ? s.sock->native_handle() : -1;
    auto fail = [&](const std::string& why) -> void {
        const std::string how = bury(s);
        throw RuntimeError("ProcessPool: " + why + " (" + how + ")");
    };
    if (fd < 0) fail("cannot open the worker's channel");
    // hello: the child reached process_main (spawn, forkserver) or the serve loop (fork).
    std::uint32_t kind = 0;
    std::string body;
    const bool ready = wait_readable(fd, Clock::now() + hello_timeout);
    if (!ready || !recv_frame(fd, kind, body) || kind != k_hello)
        fail(std::string("the worker ") + (ready ? "exited" : "did not answer within 30 s") +
             " before reaching pypool::process_main(argc, argv): call it as the first line of "
             "main");
    std::string config;
    put_u32(config, s.index);
    put_str(config, options_.name_prefix);
    config += init_ref_;
    put_u64(config, options_.max_tasks_per_child.value_or(0));
    if (!send_frame(fd, k_config, config) || !recv_frame(fd, kind, body))
        fail(options_.initializer ? "the initializer killed the worker" : "the worker died while starting");
    if (kind == k_init_err) {
        std::string what = "unknown error";
        try {
            throw_remote_exception(body.data(), body.size());
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        fail("the initializer threw: " + what);
    }
    if (kind != k_init_ok) fail("the worker sent an unexpected message while starting");
}

std::string ProcessBackend::call(RemoteEntry entry, const void* fn, std::string&& args) {
    Slot& s = *tls_slot;
    if (broken_.load(std::memory_order_acquire)) throw_broken();
    if (terminating_.load(std::memory_order_acquire)) throw RunCancelled();
    bool alive;
    {
        std::lock_guard lk(s.m);
        alive = s.alive;
    }
    if (!alive) {
        try {
            start(s);
        } catch (const std::exception& e) {
            set_broken(std::string("a replacement worker could not start: ") + e.what());
            throw_broken();
        }
        if (terminating_.load(std::memory_order_acquire)) {  // terminate() came meanwhile
            (void)bury(s);
            throw RunCancelled();
        }
    }
    std::string head;
    append_code_ref(head, reinterpret_cast<const void*>(entry));
    append_code_ref(head, fn);
    Header h{k_task, 0, head.size() + args.size()};
    Socket& sock = *s.sock;
    boost::system::error_code ec;
    const std::array<boost::asio::const_buffer, 3> out{
        boost::asio::buffer(&h, sizeof h), boost::asio::buffer(head), boost::asio::buffer(args)};
    boost::asio::write(sock, out, ec);
    std::optional<Clock::time_point> deadline;
    if (options_.task_timeout) deadline = Clock::now() + *options_.task_timeout;
    std::string reply;
    if (!ec) {
        if (deadline && !wait_readable(sock.native_handle(), deadline)) {
            const std::string how = bury(s);
            if (terminating_.load(std::memory_order_acquire)) throw RunCancelled();
            replace(s);
            throw TimeoutError("task exceeded task_timeout of " +
                               std::to_string(options_.task_timeout->count()) + " ms; " + how);
        }
        // The reply is the only frame on the channel now: read header and (most of) the
        // body with one read, the rest (a big chunk's results) straight into place.
        std::size_t have = 0;
        while (!ec && have < sizeof(Header))
            have += sock.read_some(boost::asio::buffer(s.rbuf.data() + have, s.rbuf.size() - have), ec);
        Header rh;
        if (!ec) {
            std::memcpy(&rh, s.rbuf.data(), sizeof rh);
            if (rh.kind != k_reply || rh.size == 0) ec = boost::asio::error::invalid_argument;
        }
        if (!ec) {
            const std::size_t got = std::min<std::size_t>(have - sizeof rh, rh.size);
            reply.reserve(rh.size);
            reply.assign(s.rbuf.data() + sizeof rh, got);
            if (got < rh.size) {
                reply.resize(rh.size);
                boost::asio::read(sock, boost::asio::buffer(reply.data() + got, rh.size - got), ec);
            }
        }
    }
    if (ec) {
        const std::string how = bury(s);
        if (terminating_.load(std::memory_order_acquire)) throw RunCancelled();
        replace(s);
        throw BrokenProcessPool(how + " while running the task");
    }
    if (reply[0] != 0) {  // the worker reached max_tasks_per_child and exits by itself
        {
            std::lock_guard lk(s.m);
            (void)reap_locked(s);
        }
        replace(s);
    }
    reply.erase(0, 1);
    return reply;
}

// ---- the functions process.hpp declares ------------------------------------------------------

void ProcessBackendDeleter::operator()(ProcessBackend* b) const noexcept { delete b; }

ProcessBackend* make_process_backend(const ProcessPoolOptions& options) {
    return new ProcessBackend(options);
}

PoolOptions process_core_options(ProcessBackend* b, const ProcessPoolOptions& options) {
    PoolOptions o;
    o.processes = options.processes;
    o.initializer = [b] { b->attach(); };
    o.thread_name_prefix = options.name_prefix;
    o.on_callback_error = options.on_callback_error;
    return o;
}

// A null backend: the front serves another transport (mpi::Executor, remote_channel.hpp).
void process_kill_all(ProcessBackend* b) noexcept { if (b) b->kill_all(); }
void process_reap_all(ProcessBackend* b) noexcept { if (b) b->reap_all(); }
void process_check_usable(const ProcessBackend* b) { if (b) b->check_usable(); }

std::string process_call(RemoteEntry entry, const void* fn, std::string&& args) {
    // Seam (remote_channel.hpp): a proxy thread bound to another transport sends through it.
    if (RemoteChannel* c = thread_remote_channel()) return c->call(entry, fn, std::move(args));
    if (!tls_backend)
        throw RuntimeError("pypool internal error: a process task ran outside its ProcessPool");
    return tls_backend->call(entry, fn, std::move(args));
}

}  // namespace pypool::detail

namespace pypool {

void process_main(int /*argc*/, char** /*argv*/) {
    const char* role = std::getenv(detail::role_env);
    if (!role || !*role) return;
    const std::string r = role;
    const auto colon = r.find(':');
    const std::string kind = r.substr(0, colon);
    const pid_t parent = colon == std::string::npos ? 0 : static_cast<pid_t>(std::atol(r.c_str() + colon + 1));
    ::unsetenv(detail::role_env);
    if (kind == "worker") {
        detail::become_child(detail::child_fd, parent, true);
        detail::serve_worker(detail::child_fd);
    }
    if (kind == "forkserver") {
        detail::become_child(detail::child_fd, parent, false);
        detail::serve_forkserver(detail::child_fd);
    }
    std::fprintf(stderr, "pypool: unknown %s role '%s'\n", detail::role_env, role);
    ::_exit(1);
}

}  // namespace pypool
