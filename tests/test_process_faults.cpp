// ProcessPool faults (issue 12, API.md section 11): each kind of worker death (SIGSEGV,
// abort, std::terminate, _exit, SIGKILL from outside, out of memory) fails only the task
// it ran, with BrokenProcessPool naming the pid and the signal or exit status, and the
// next 100 tasks succeed on a replacement; task_timeout kills an endless loop; exceptions
// come back as their own type, a registered type or RemoteError with the type's name; a
// value that fails to encode or decode fails its task with SerializationError.
#include "process_test_util.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <csignal>
#include <exception>
#include <memory>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

namespace utf = boost::unit_test;
using namespace std::chrono_literals;

namespace ptest_faults {

int my_pid() { return static_cast<int>(::getpid()); }
int square(int x) { return x * x; }

int segfault(int) {
#if PYPOOL_TEST_SANITIZED
    // ASan would report the fault and UBSan the null store (halt_on_error: exit status 1)
    // instead of dying by the signal: raise it with its default action.
    std::signal(SIGSEGV, SIG_DFL);
    std::raise(SIGSEGV);
#endif
    volatile int* p = nullptr;
    *p = 1;
    return 0;
}
int call_abort(int) {
    std::abort();
}
int call_terminate(int) {
    std::terminate();
}
int call_exit(int code) {
    ::_exit(code);
}
/// Writes its pid to `path`, then blocks until killed.
int block_until_killed(const std::string& path) {
    {
        std::ofstream out(path + ".tmp");
        out << ::getpid() << std::flush;
    }
    std::filesystem::rename(path + ".tmp", path);
    for (;;) ::pause();
}
/// The address space limited to 512 MiB, then an allocation in a noexcept frame: the
/// worker dies out of memory (std::bad_alloc reaches std::terminate).
char* volatile g_sink = nullptr;  // keeps the compiler from eliding the allocations below
void allocate_noexcept(std::size_t n) noexcept {
    g_sink = new char[n];
    g_sink[0] = 1;
    delete[] g_sink;
}
int die_out_of_memory(int) {
    rlimit lim{512UL << 20, 512UL << 20};
    ::setrlimit(RLIMIT_AS, &lim);
    allocate_noexcept(std::size_t{1} << 31);
    return 0;
}
/// A huge allocation: std::bad_alloc (or, under ASan, the worker dies).
int allocate_huge(int) {
    g_sink = new char[std::size_t{1} << 46];
    g_sink[0] = 1;
    delete[] g_sink;
    return 1;
}
int spin_forever(int) {
    volatile unsigned long long n = 0;
    for (;;) n = n + 1;
}
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

struct Registered : std::runtime_error {
    explicit Registered(const std::string& s) : std::runtime_error(s) {}
};
struct Unregistered : std::runtime_error {
    explicit Unregistered(const std::string& s) : std::runtime_error(s) {}
};
struct NotAnException {};

int throw_kind(int kind) {
    switch (kind) {
        case 0: throw std::invalid_argument("bad argument");
        case 1: throw std::out_of_range("out of range");
        case 2: throw std::runtime_error("runtime");
        case 3: throw std::logic_error("logic");
        case 4: throw std::bad_alloc();
        case 5: throw pypool::ValueError("value error");
        case 6: throw Registered("registered one");
        case 7: throw Unregistered("unregistered one");
        case 8: throw 42;
        case 9: throw std::overflow_error("overflow");
        case 10: throw std::domain_error("domain");
        case 11: throw std::length_error("length");
        case 12: throw std::range_error("range");
        case 13: throw std::underflow_error("underflow");
        default: return kind;
    }
}

/// Encodes fine; decoding throws when v < 0.
struct FailsOnLoad {
    int v = 0;
    template <class A>
    void save(A& a) const {
        a(v);
    }
    template <class A>
    void load(A& a) {
        a(v);
        if (v < 0) throw std::runtime_error("FailsOnLoad refuses");
    }
};
/// Encoding throws when v < 0.
struct FailsOnSave {
    int v = 0;
    template <class A>
    void save(A& a) const {
        if (v < 0) throw std::runtime_error("FailsOnSave refuses");
        a(v);
    }
    template <class A>
    void load(A& a) {
        a(v);
    }
};
int take_fails_on_load(const FailsOnLoad& x) { return x.v; }
int take_fails_on_save(const FailsOnSave& x) { return x.v; }
FailsOnLoad make_fails_on_load(int v) { return FailsOnLoad{v}; }
FailsOnSave make_fails_on_save(int v) { return FailsOnSave{v}; }

/// The next 100 tasks succeed (the worker was replaced and nothing else broke).
void next_100_succeed(pypool::ProcessPool& pool) {
    std::vector<pypool::Future<int>> fs;
    for (int i = 0; i < 100; ++i) fs.push_back(pool.submit(square, i));
    for (int i = 0; i < 100; ++i) BOOST_TEST(fs[static_cast<std::size_t>(i)].result(60s) == i * i);
}

/// Runs `crash` on a one-worker pool; checks BrokenProcessPool naming the pid and `expect`,
/// then a replacement worker (another pid) and 100 good tasks.
void check_death(int (*crash)(int), int arg, const std::vector<std::string>& any_of) {
    pypool::ProcessPool pool(ptest::options(1));
    const int pid = pool.apply(my_pid);
    auto r = pool.submit(crash, arg);
    try {
        r.result(60s);
        BOOST_ERROR("the task did not fail");
    } catch (const pypool::BrokenProcessPool& e) {
        const std::string m = e.what();
        BOOST_TEST(ptest::contains(m, std::to_string(pid)), "pid " << pid << " not in: " << m);
        bool named = any_of.empty();
        for (const auto& s : any_of) named = named || ptest::contains(m, s);
        BOOST_TEST(named, "cause not named in: " << m);
        BOOST_TEST_MESSAGE("BrokenProcessPool: " << m);
    }
    BOOST_TEST(!r.successful());
    BOOST_TEST(ptest::eventually([&] { return !ptest::alive(pid); }));
    const int next = pool.apply(my_pid);
    BOOST_TEST(next != pid);
    next_100_succeed(pool);
}

std::vector<std::string> signal_words(int sig, const char* name) {
    return {name, "signal " + std::to_string(sig), strsignal(sig)};
}

}  // namespace ptest_faults

using namespace ptest_faults;

BOOST_AUTO_TEST_SUITE(process_faults)

BOOST_AUTO_TEST_CASE(segfault_fails_only_its_task, *utf::timeout(180)) {
    check_death(segfault, 0, signal_words(SIGSEGV, "SIGSEGV"));
}

BOOST_AUTO_TEST_CASE(abort_fails_only_its_task, *utf::timeout(180)) {
    check_death(call_abort, 0, signal_words(SIGABRT, "SIGABRT"));
}

BOOST_AUTO_TEST_CASE(std_terminate_fails_only_its_task, *utf::timeout(180)) {
    check_death(call_terminate, 0, signal_words(SIGABRT, "SIGABRT"));
}

BOOST_AUTO_TEST_CASE(exit_fails_only_its_task_naming_the_status, *utf::timeout(180)) {
    check_death(call_exit, 3, {"exit status 3", "exited with 3", "status 3", "code 3"});
}

BOOST_AUTO_TEST_CASE(exit_zero_inside_a_task_still_fails_it, *utf::timeout(180)) {
    check_death(call_exit, 0, {});
}

BOOST_AUTO_TEST_CASE(out_of_memory_death_fails_only_its_task, *utf::timeout(180)) {
    if (PYPOOL_TEST_SANITIZED) {
        BOOST_TEST_MESSAGE("skipped: RLIMIT_AS and the sanitizers' shadow memory do not mix");
        return;
    }
    check_death(die_out_of_memory, 0, signal_words(SIGABRT, "SIGABRT"));
}

BOOST_AUTO_TEST_CASE(huge_allocation_fails_only_its_task, *utf::timeout(180)) {
    pypool::ProcessPool pool(ptest::options(1));
    auto r = pool.submit(allocate_huge, 0);
    BOOST_TEST_REQUIRE(r.wait(60s));
    const auto e = r.exception();
    BOOST_TEST_REQUIRE(static_cast<bool>(e));
    bool expected = false;
    try {
        std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
        expected = true;
    } catch (const pypool::BrokenProcessPool&) {
        expected = true;  // the allocator killed the process (ASan's does)
    } catch (...) {
    }
    BOOST_TEST(expected, "not bad_alloc or BrokenProcessPool: " << ptest::what_of(e));
    next_100_succeed(pool);
}

BOOST_AUTO_TEST_CASE(sigkill_from_outside_fails_only_its_task, *utf::timeout(180)) {
    ptest::TempDir dir;
    pypool::ProcessPool pool(ptest::options(2));
    const std::string marker = dir.file("started");
    auto victim = pool.submit(block_until_killed, marker);
    std::vector<pypool::Future<int>> others;
    for (int i = 0; i < 10; ++i) others.push_back(pool.submit(square, i));
    BOOST_TEST_REQUIRE(ptest::eventually([&] { return !ptest::read_file(marker).empty(); }, 60s));
    const pid_t pid = static_cast<pid_t>(std::stol(ptest::read_file(marker)));
    BOOST_TEST_REQUIRE(::kill(pid, SIGKILL) == 0);
    try {
        victim.result(60s);
        BOOST_ERROR("the task did not fail");
    } catch (const pypool::BrokenProcessPool& e) {
        const std::string m = e.what();
        BOOST_TEST(ptest::contains(m, std::to_string(pid)), "pid not in: " << m);
        bool named = false;
        for (const auto& s : signal_words(SIGKILL, "SIGKILL")) named = named || ptest::contains(m, s);
        BOOST_TEST(named, "SIGKILL not named in: " << m);
    }
    for (int i = 0; i < 10; ++i) BOOST_TEST(others[static_cast<std::size_t>(i)].result(60s) == i * i);
    next_100_succeed(pool);
}

BOOST_AUTO_TEST_CASE(a_crash_on_one_worker_leaves_the_other_workers_tasks_alone, *utf::timeout(180)) {
    pypool::ProcessPool pool(ptest::options(2));
    std::vector<pypool::Future<int>> slow;
    for (int i = 0; i < 6; ++i) slow.push_back(pool.submit(sleep_ms, 50));
    auto crash = pool.submit(segfault, 0);
    for (int i = 0; i < 6; ++i) slow.push_back(pool.submit(sleep_ms, 20));
    BOOST_CHECK_THROW(crash.result(60s), pypool::BrokenProcessPool);
    for (auto& f : slow) BOOST_TEST(f.result(60s) > 0);
    next_100_succeed(pool);
}

BOOST_AUTO_TEST_CASE(a_map_whose_chunk_was_lost_fails_with_broken_process_pool, *utf::timeout(180)) {
    pypool::ProcessPool pool(ptest::options(2));
    auto r = pool.map_async(segfault, std::vector<int>{0, 1, 2, 3}, {.chunksize = 2});
    BOOST_CHECK_THROW(r.get(60s), pypool::BrokenProcessPool);
    BOOST_TEST((pool.map(square, std::vector<int>{1, 2, 3}) == std::vector<int>{1, 4, 9}));
}

BOOST_AUTO_TEST_CASE(task_timeout_kills_an_endless_loop, *utf::timeout(180)) {
    auto o = ptest::options(1);
    o.task_timeout = 300ms;
    pypool::ProcessPool pool(o);
    const int pid = pool.apply(my_pid);
    auto r = pool.submit(spin_forever, 0);
    try {
        r.result(60s);
        BOOST_ERROR("the endless task returned");
    } catch (const pypool::TimeoutError& e) {
        BOOST_TEST(ptest::contains(e.what(), "task exceeded"), "message: " << e.what());
    }
    BOOST_TEST(ptest::eventually([&] { return !ptest::alive(pid); }));
    BOOST_TEST(pool.apply(my_pid) != pid);
    BOOST_TEST(pool.submit(sleep_ms, 50).result(60s) == 50);  // a task within the limit runs
    next_100_succeed(pool);
}

BOOST_AUTO_TEST_CASE(task_timeout_counts_from_the_start_on_the_worker, *utf::timeout(180)) {
    auto o = ptest::options(1);
    o.task_timeout = 2000ms;
    pypool::ProcessPool pool(o);
    // Five tasks of 600 ms each queued on one worker: 3 s in all, each within its limit.
    std::vector<pypool::Future<int>> fs;
    for (int i = 0; i < 5; ++i) fs.push_back(pool.submit(sleep_ms, 600));
    for (auto& f : fs) BOOST_TEST(f.result(60s) == 600);
}

BOOST_AUTO_TEST_CASE(standard_exceptions_come_back_as_their_type, *utf::timeout(120)) {
    pypool::ProcessPool pool(ptest::options(2));
    auto expect = [&](int kind, auto tag, const std::string& what) {
        using E = decltype(tag);
        try {
            pool.apply(throw_kind, std::tuple{kind});
            BOOST_ERROR("kind " << kind << " did not throw");
        } catch (const E& e) {
            BOOST_TEST(std::string(e.what()) == what);
            BOOST_TEST(typeid(e).name() == typeid(E).name(), "kind " << kind << " came back as a subtype");
        } catch (const std::exception& e) {
            BOOST_ERROR("kind " << kind << " came back as " << typeid(e).name() << ": " << e.what());
        }
    };
    expect(0, std::invalid_argument(""), "bad argument");
    expect(1, std::out_of_range(""), "out of range");
    expect(2, std::runtime_error(""), "runtime");
    expect(3, std::logic_error(""), "logic");
    expect(5, pypool::ValueError(""), "value error");
    expect(9, std::overflow_error(""), "overflow");
    expect(10, std::domain_error(""), "domain");
    expect(11, std::length_error(""), "length");
    expect(12, std::range_error(""), "range");
    expect(13, std::underflow_error(""), "underflow");
    BOOST_CHECK_THROW(pool.apply(throw_kind, std::tuple{4}), std::bad_alloc);
}

BOOST_AUTO_TEST_CASE(registered_exceptions_come_back_as_themselves, *utf::timeout(120)) {
    pypool::register_exception<Registered>();
    pypool::ProcessPool pool(ptest::options(1));
    try {
        pool.apply(throw_kind, std::tuple{6});
        BOOST_ERROR("did not throw");
    } catch (const Registered& e) {
        BOOST_TEST(std::string(e.what()) == "registered one");
    }
}

BOOST_AUTO_TEST_CASE(other_exceptions_come_back_as_remote_error_with_the_type_name, *utf::timeout(120)) {
    pypool::ProcessPool pool(ptest::options(1));
    try {
        pool.apply(throw_kind, std::tuple{7});
        BOOST_ERROR("did not throw");
    } catch (const pypool::RemoteError& e) {
        BOOST_TEST(e.type_name() == "ptest_faults::Unregistered");
        BOOST_TEST(std::string(e.what()) == "ptest_faults::Unregistered: unregistered one");
        const std::runtime_error& base = e;  // RemoteError is a std::runtime_error
        BOOST_TEST(base.what() == e.what());
    }
    try {
        pool.apply(throw_kind, std::tuple{8});
        BOOST_ERROR("did not throw");
    } catch (const pypool::RemoteError& e) {
        BOOST_TEST(e.type_name() == "int");
    }
    // The pool is fine afterwards.
    BOOST_TEST(pool.apply(throw_kind, std::tuple{100}) == 100);
}

BOOST_AUTO_TEST_CASE(error_callback_gets_broken_process_pool, *utf::timeout(120)) {
    pypool::ProcessPool pool(ptest::options(1));
    std::string message;
    auto r = pool.apply_async(call_abort, std::tuple{0},
                              {.error_callback = [&](std::exception_ptr e) {
                                  try {
                                      std::rethrow_exception(e);
                                  } catch (const pypool::BrokenProcessPool& b) {
                                      message = b.what();
                                  } catch (...) {
                                      message = "other";
                                  }
                              }});
    BOOST_TEST(r.wait(60s));
    BOOST_TEST(!message.empty());
    BOOST_TEST(message != "other");
}

BOOST_AUTO_TEST_CASE(serialization_errors_fail_only_their_task, *utf::timeout(120)) {
    pypool::ProcessPool pool(ptest::options(1));
    // an argument that fails to decode in the worker
    BOOST_CHECK_THROW(pool.submit(take_fails_on_load, FailsOnLoad{-1}).result(60s), pypool::SerializationError);
    // a result that fails to encode in the worker
    BOOST_CHECK_THROW(pool.submit(make_fails_on_save, -1).result(60s), pypool::SerializationError);
    // a result that fails to decode in the parent
    BOOST_CHECK_THROW(pool.submit(make_fails_on_load, -1).result(60s), pypool::SerializationError);
    // an argument that fails to encode in the parent: that task fails, the pool goes on
    try {
        auto f = pool.submit(take_fails_on_save, FailsOnSave{-1});
        BOOST_CHECK_THROW(f.result(60s), pypool::SerializationError);
    } catch (const pypool::SerializationError&) {
        BOOST_ERROR("submit threw SerializationError instead of failing the task");
    }
    BOOST_TEST(pool.submit(take_fails_on_load, FailsOnLoad{5}).result(60s) == 5);
    BOOST_TEST(pool.submit(make_fails_on_save, 6).result(60s).v == 6);
    next_100_succeed(pool);
}

BOOST_AUTO_TEST_CASE(a_serialization_error_inside_a_map_fails_the_map, *utf::timeout(120)) {
    pypool::ProcessPool pool(ptest::options(2));
    BOOST_CHECK_THROW(pool.map(make_fails_on_save, std::vector<int>{1, -1, 2}, 1), pypool::SerializationError);
    BOOST_TEST((pool.map(square, std::vector<int>{2, 3}) == std::vector<int>{4, 9}));
}

BOOST_AUTO_TEST_SUITE_END()
