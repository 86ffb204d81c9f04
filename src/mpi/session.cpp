// pypool::mpi::Executor's transport (issue 14): MPI_Init_thread / MPI_Finalize, one
// RemoteChannel per worker rank (proxy thread i <-> rank i + 1, MPI_THREAD_MULTIPLE), and
// the worker ranks' serve loop. Everything above the channel (member templates, RemoteFn,
// chunk runners, cereal wire, exception transport) is ProcessPool's. See docs/DESIGN.md.
//
// Nobody waits in a blocking MPI call: a blocked MPI_Recv burns ~90% of a core with Open
// MPI 4.1, so every wait is MPI_Improbe in a loop with a bounded nanosleep back-off
// (mpi4py.futures' way): a few free polls, then sleeps doubling from 1 us to 1 ms.
// The C API only: Open MPI's deprecated C++ bindings are not warning-free.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <sys/prctl.h>
#include <time.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <pypool/detail/remote_channel.hpp>
#include <pypool/errors.hpp>
#include <pypool/mpi.hpp>

namespace pypool::mpi::detail {
namespace {

using pypool::detail::RemoteChannel;
using pypool::detail::RemoteEntry;

enum Tag : int { tag_task = 1, tag_reply = 2, tag_stop = 3 };

/// mpi4py.futures' back-off: free polls first, then sleeps doubling from 1 us to 1 ms. The
/// polling thread's timer slack is 1 us while it waits (Linux's default of 50 us would
/// make every short sleep 50 us long), restored when the wait ends.
class Backoff {
public:
    Backoff() noexcept : slack_(::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)) {}
    ~Backoff() {
        if (lowered_ && slack_ > 0) ::prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(slack_), 0, 0, 0);
    }
    Backoff(const Backoff&) = delete;
    Backoff& operator=(const Backoff&) = delete;
    void pause() noexcept {
        if (n_ < free_polls) {
            ++n_;
            return;
        }
        if (!lowered_) {
            ::prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
            lowered_ = true;
        }
        ns_ = ns_ == 0 ? min_ns : (ns_ * 2 > max_ns ? max_ns : ns_ * 2);
        timespec ts{0, ns_};
        ::nanosleep(&ts, nullptr);
    }

private:
    static constexpr int free_polls = 16;
    static constexpr long min_ns = 1'000;
    static constexpr long max_ns = 1'000'000;
    int slack_;
    bool lowered_ = false;
    int n_ = 0;
    long ns_ = 0;
};

/// Receives the next message from `source` with `tag` (MPI_ANY_TAG allowed) into out,
/// polling with back-off; returns its tag, or -1 if give_up() became true first.
template <class GiveUp>
int poll_recv(MPI_Comm comm, int source, int tag, std::string& out, GiveUp&& give_up) {
    Backoff b;
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        MPI_Improbe(source, tag, comm, &flag, &msg, &st);
        if (flag) {
            int count = 0;
            MPI_Get_count(&st, MPI_BYTE, &count);
            out.resize(static_cast<std::size_t>(count));
            MPI_Mrecv(out.data(), count, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
            return st.MPI_TAG;
        }
        if (give_up()) return -1;
        b.pause();
    }
}

int checked_count(std::size_t n) {
    if (n > static_cast<std::size_t>(INT_MAX))
        throw SerializationError("pypool::mpi::Executor: a message of " + std::to_string(n) +
                                 " bytes is over MPI's limit of 2 GiB");
    return static_cast<int>(n);
}

}  // namespace

class Session {
public:
    /// The channel of one worker rank; used by one proxy thread at a time.
    class Channel final : public RemoteChannel {
    public:
        Channel(Session& s, int rank) : s_(s), rank_(rank) {}
        std::string call(RemoteEntry entry, const void* fn, std::string&& args) override {
            if (s_.terminating_.load(std::memory_order_acquire))
                throw pypool::detail::RunCancelled();
            const std::string msg = pypool::detail::encode_remote_call(entry, fn, args);
            MPI_Send(msg.data(), checked_count(msg.size()), MPI_BYTE, rank_, tag_task, s_.comm_);
            pending_.store(true, std::memory_order_relaxed);
            std::string reply;
            const int tag = poll_recv(s_.comm_, rank_, tag_reply, reply, [this] {
                return s_.terminating_.load(std::memory_order_acquire);
            });
            if (tag < 0) throw pypool::detail::RunCancelled();  // the reply is drained at release
            pending_.store(false, std::memory_order_relaxed);
            return reply;
        }
        /// Release: drops a reply terminate() left behind, then tells the rank to return.
        void release() noexcept {
            std::string reply;
            if (pending_.load(std::memory_order_relaxed))
                (void)poll_recv(s_.comm_, rank_, tag_reply, reply, [] { return false; });
            pending_.store(false, std::memory_order_relaxed);
            MPI_Send(nullptr, 0, MPI_BYTE, rank_, tag_stop, s_.comm_);
        }

    private:
        Session& s_;
        int rank_;
        std::atomic<bool> pending_{false};  // a task was sent and its reply not received
    };

    /// Every call of a worker rank's (unused) pool: the Executor is false there.
    class NotRoot final : public RemoteChannel {
    public:
        explicit NotRoot(int rank) : rank_(rank) {}
        std::string call(RemoteEntry, const void*, std::string&&) override {
            throw RuntimeError("pypool::mpi::Executor: tasks are submitted on the root (rank 0) "
                               "only; on rank " + std::to_string(rank_) +
                               " the Executor is false (guard the pool code with if (ex))");
        }

    private:
        int rank_;
    };

    Session(int& argc, char**& argv) {
        int inited = 0;
        MPI_Initialized(&inited);
        if (inited) {
            MPI_Query_thread(&provided_);
        } else {
            MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided_);
            owns_mpi_ = true;
        }
        MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &ranks_);
        if (ranks_ < 2) {
            finish();
            const char* prog = argc > 0 && argv && argv[0] ? argv[0] : "./app";
            throw ValueError(std::string("pypool::mpi::Executor needs at least 2 MPI ranks (rank 0 "
                                         "submits, the others run tasks); this job has 1: run it "
                                         "with mpirun -n 4 ") + prog);
        }
        if (rank_ == 0 && provided_ < MPI_THREAD_MULTIPLE) {
            finish();
            throw RuntimeError("pypool::mpi::Executor: the MPI library did not grant "
                               "MPI_THREAD_MULTIPLE on the root");
        }
        if (rank_ == 0) {
            for (int r = 1; r < ranks_; ++r) channels_.push_back(std::make_unique<Channel>(*this, r));
        } else {
            not_root_ = std::make_unique<NotRoot>(rank_);
            serve();
        }
    }
    ~Session() {
        release_ranks();
        finish();
    }

    bool is_root() const noexcept { return rank_ == 0; }
    int rank() const noexcept { return rank_; }
    int ranks() const noexcept { return ranks_; }

    pypool::PoolOptions core_options(const ExecutorOptions& o) {
        pypool::PoolOptions p;
        p.thread_name_prefix = o.name_prefix;
        p.on_callback_error = o.on_callback_error;
        if (is_root()) {
            p.processes = ranks_ - 1;
            p.initializer = [this] {
                const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
                pypool::detail::set_thread_remote_channel(channels_.at(i).get());
            };
        } else {
            p.processes = 1;
            p.initializer = [this] { pypool::detail::set_thread_remote_channel(not_root_.get()); };
        }
        return p;
    }

    void terminate() noexcept { terminating_.store(true, std::memory_order_release); }

    void release_ranks() noexcept {
        std::lock_guard lk(release_m_);
        if (released_ || !is_root()) return;
        released_ = true;
        for (auto& c : channels_) c->release();
    }

private:
    /// A worker rank's life: run tasks from the root until it says stop.
    void serve() {
        std::string task, out;
        for (;;) {
            const int tag = poll_recv(comm_, 0, MPI_ANY_TAG, task, [] { return false; });
            if (tag == tag_stop) return;
            if (tag != tag_task) continue;
            out.clear();
            pypool::detail::run_remote_call(task.data(), task.size(), out);
            std::fflush(nullptr);  // a task's output is out before its result
            if (out.size() > static_cast<std::size_t>(INT_MAX)) {  // fails the task, not the rank
                const std::size_t n = out.size();
                out.clear();
                out.push_back(pypool::detail::reply_serialization);
                out += "pypool::mpi::Executor: a reply of " + std::to_string(n) +
                       " bytes is over MPI's limit of 2 GiB";
            }
            MPI_Send(out.data(), checked_count(out.size()), MPI_BYTE, 0, tag_reply, comm_);
        }
    }
    void finish() noexcept {
        if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (owns_mpi_ && !finalized) MPI_Finalize();
        owns_mpi_ = false;
    }

    MPI_Comm comm_ = MPI_COMM_NULL;
    int provided_ = 0;
    int rank_ = 0;
    int ranks_ = 0;
    bool owns_mpi_ = false;
    std::vector<std::unique_ptr<Channel>> channels_;
    std::unique_ptr<NotRoot> not_root_;
    std::atomic<std::size_t> next_{0};
    std::atomic<bool> terminating_{false};
    std::mutex release_m_;
    bool released_ = false;
};

void SessionDeleter::operator()(Session* s) const noexcept { delete s; }
Session* make_session(int& argc, char**& argv) { return new Session(argc, argv); }
pypool::PoolOptions session_core_options(Session* s, const ExecutorOptions& o) {
    return s->core_options(o);
}
bool session_is_root(const Session* s) noexcept { return s->is_root(); }
int session_rank(const Session* s) noexcept { return s->rank(); }
int session_ranks(const Session* s) noexcept { return s->ranks(); }
void session_terminate(Session* s) noexcept { s->terminate(); }
void session_release_ranks(Session* s) noexcept { s->release_ranks(); }

}  // namespace pypool::mpi::detail
