// ProcessPool: basic members (the implementer's development checks; the behaviour tests of
// issue 12 are the other tests/test_process_*.cpp files).
#include "process_test_main.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <pypool/pypool.hpp>

#include <chrono>
#include <latch>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <string>
#include <vector>

namespace {
int add(int a, int b) { return a + b; }
int getpid_task() { return static_cast<int>(::getpid()); }
}  // namespace

BOOST_AUTO_TEST_CASE(apply_runs_in_another_process) {
    pypool::ProcessPool pool(pypool::ProcessPoolOptions{.processes = 2});
    BOOST_TEST(pool.apply(add, std::tuple{2, 3}) == 5);
    BOOST_TEST(pool.apply(getpid_task) != static_cast<int>(::getpid()));
    auto f = pool.submit([](std::string s) { return s + "!"; }, std::string("hi"));
    BOOST_TEST(f.get() == "hi!");
}

namespace {
using pypool::StartMethod;
const auto& all_methods = ptest::all_methods();  // not fork under ASan/TSan: see there

pypool::ProcessPoolOptions opts(StartMethod m, int n = 2) {
    return pypool::ProcessPoolOptions{.processes = n, .start_method = m};
}
int crash(int x) {
    if (x < 0) ::raise(SIGSEGV);  // a null store would be UBSan's report (halt_on_error) instead
    return x;
}
int throw_runtime(int) { throw std::runtime_error("boom"); }
int throw_int(int) { throw 7; }
struct MyError : std::runtime_error {
    explicit MyError(const std::string& w) : std::runtime_error(w) {}
};
int throw_mine(int) { throw MyError("mine"); }
int sqr(int x) { return x * x; }
void forever() {
    for (;;) ::pause();
}
void init_throws() { throw std::runtime_error("init failed"); }
}  // namespace

BOOST_AUTO_TEST_CASE(every_start_method_runs_tasks) {
    for (StartMethod m : all_methods) {
        pypool::ProcessPool pool(opts(m));
        BOOST_TEST(pool.apply(add, std::tuple{40, 2}) == 42);
        std::vector<int> in{1, 2, 3, 4, 5};
        BOOST_TEST(pool.map(sqr, in) == (std::vector<int>{1, 4, 9, 16, 25}));
        int sum = 0;
        for (int v : pool.imap(sqr, in)) sum += v;
        BOOST_TEST(sum == 55);
    }
}

BOOST_AUTO_TEST_CASE(exceptions_come_back_by_type) {
    pypool::register_exception<MyError>();
    for (StartMethod m : all_methods) {
        pypool::ProcessPool pool(opts(m, 1));
        BOOST_CHECK_EXCEPTION(pool.apply(throw_runtime, std::tuple{1}), std::runtime_error,
                              [](const std::runtime_error& e) {
                                  return std::string(e.what()) == "boom" &&
                                         typeid(e) == typeid(std::runtime_error);
                              });
        BOOST_CHECK_EXCEPTION(pool.apply(throw_int, std::tuple{1}), pypool::RemoteError,
                              [](const pypool::RemoteError& e) { return e.type_name() == "int"; });
        BOOST_CHECK_THROW(pool.apply(throw_mine, std::tuple{1}), MyError);
    }
}

BOOST_AUTO_TEST_CASE(a_crash_fails_only_its_task) {
    for (StartMethod m : all_methods) {
        pypool::ProcessPool pool(opts(m));
        BOOST_CHECK_EXCEPTION(pool.apply(crash, std::tuple{-1}), pypool::BrokenProcessPool,
                              [](const pypool::BrokenProcessPool& e) {
                                  return std::string(e.what()).find("SIGSEGV") != std::string::npos;
                              });
        for (int i = 0; i < 20; ++i) BOOST_TEST(pool.apply(crash, std::tuple{i}) == i);
    }
}

BOOST_AUTO_TEST_CASE(task_timeout_kills_a_stuck_task) {
    for (StartMethod m : all_methods) {
        auto o = opts(m, 1);
        o.task_timeout = std::chrono::milliseconds(200);
        pypool::ProcessPool pool(o);
        BOOST_CHECK_THROW(pool.apply(forever), pypool::TimeoutError);
        BOOST_TEST(pool.apply(add, std::tuple{1, 1}) == 2);
    }
}

BOOST_AUTO_TEST_CASE(max_tasks_per_child_recycles) {
    for (StartMethod m : all_methods) {
        auto o = opts(m, 2);
        o.max_tasks_per_child = 1;
        pypool::ProcessPool pool(o);
        std::vector<pypool::AsyncResult<int>> rs;
        for (int i = 0; i < 20; ++i) rs.push_back(pool.submit(getpid_task));
        std::set<int> pids;
        for (auto& r : rs) pids.insert(r.get());
        BOOST_TEST(pids.size() == 20U);
    }
}

BOOST_AUTO_TEST_CASE(failing_initializer_fails_the_constructor) {
    for (StartMethod m : all_methods) {
        auto o = opts(m, 2);
        o.initializer = init_throws;
        BOOST_CHECK_EXCEPTION(pypool::ProcessPool{o}, pypool::RuntimeError,
                              [](const pypool::RuntimeError& e) {
                                  return std::string(e.what()).find("init failed") != std::string::npos;
                              });
    }
}

BOOST_AUTO_TEST_CASE(terminate_kills_running_tasks) {
    for (StartMethod m : all_methods) {
        pypool::ProcessPool pool(opts(m, 1));
        auto r = pool.submit(forever);
        while (!r.running()) std::this_thread::yield();
        pool.terminate();
        BOOST_CHECK_THROW(r.get(), pypool::CancelledError);
        BOOST_TEST(r.cancelled());
        pool.join();
    }
}

namespace {
int fail_odd(int x) {
    if (x % 2) throw std::invalid_argument("odd " + std::to_string(x));
    return x;
}
void nothing(int) {}
int mul(int a, int b) { return a * b; }
}  // namespace

BOOST_AUTO_TEST_CASE(map_chunks_travel_as_one_message_with_per_item_outcomes) {
    for (StartMethod m : all_methods) {
        pypool::ProcessPool pool(opts(m));
        std::vector<int> in(1000);
        for (int i = 0; i < 1000; ++i) in[static_cast<std::size_t>(i)] = i;
        auto out = pool.map(sqr, in);
        BOOST_TEST(out.size() == 1000U);
        BOOST_TEST(out[999] == 999 * 999);
        BOOST_CHECK_EXCEPTION(pool.map(fail_odd, in, 10), std::invalid_argument,
                              [](const std::invalid_argument& e) { return std::string(e.what()) == "odd 1"; });
        BOOST_TEST(pool.map(nothing, in).size() == 1000U);
        std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}};
        BOOST_TEST(pool.starmap(mul, pairs) == (std::vector<int>{2, 12}));
        // imap: a failing item throws at its position, the rest still come
        auto it = pool.imap(fail_odd, std::vector<int>{0, 1, 2}, 3);
        BOOST_TEST(*it.next() == 0);
        BOOST_CHECK_THROW(it.next(), std::invalid_argument);
        BOOST_TEST(*it.next() == 2);
        BOOST_TEST(!it.next());
        int sum = 0;
        for (int v : pool.imap_unordered(sqr, std::vector<int>{1, 2, 3}, 2)) sum += v;
        BOOST_TEST(sum == 14);
        // a chunk whose worker dies fails the map with BrokenProcessPool, the pool goes on
        BOOST_CHECK_THROW(pool.map(crash, std::vector<int>{1, -1, 2}, 1), pypool::BrokenProcessPool);
        BOOST_TEST(pool.map(crash, std::vector<int>{1, 2}).size() == 2U);
    }
}

BOOST_AUTO_TEST_CASE(callbacks_run_in_the_parent_and_can_follow_up) {
    pypool::ProcessPool pool(opts(StartMethod::forkserver));
    std::vector<int> seen;  // touched only by callbacks
    pypool::AsyncResult<int> follow;
    auto r = pool.apply_async(add, std::tuple{1, 2},
                              {.callback = [&](const int& v) {
                                  seen.push_back(v);
                                  follow = pool.apply_async(add, std::tuple{v, 10});
                              }});
    r.get();
    BOOST_TEST(follow.get() == 13);
    BOOST_TEST(seen == std::vector<int>{3});
    auto s = pool.stats();
    BOOST_TEST(s.submitted == 2U);
    BOOST_TEST(s.completed == 2U);
}

namespace {
std::string flag_path() {
    const char* p = std::getenv("PYPOOL_TEST_FLAG_FILE");
    return p ? p : "";
}
void init_fails_once_flagged() {
    if (!flag_path().empty() && ::access(flag_path().c_str(), F_OK) == 0)
        throw std::runtime_error("flagged");
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_replacement_whose_initializer_fails_breaks_the_pool) {
    const std::string path = "/tmp/pypool_test_flag_" + std::to_string(::getpid());
    ::setenv("PYPOOL_TEST_FLAG_FILE", path.c_str(), 1);
    for (StartMethod m : all_methods) {
        ::unlink(path.c_str());
        auto o = opts(m, 1);
        o.initializer = init_fails_once_flagged;
        pypool::ProcessPool pool(o);
        BOOST_TEST(pool.apply(add, std::tuple{1, 2}) == 3);
        std::FILE* f = std::fopen(path.c_str(), "w");
        BOOST_REQUIRE(f);
        std::fclose(f);
        BOOST_CHECK_THROW(pool.apply(crash, std::tuple{-1}), pypool::BrokenProcessPool);
        BOOST_CHECK_EXCEPTION(pool.apply(add, std::tuple{1, 2}), pypool::BrokenProcessPool,
                              [](const pypool::BrokenProcessPool& e) {
                                  return std::string(e.what()).find("flagged") != std::string::npos;
                              });
        BOOST_CHECK_THROW(pool.submit(add, 1, 2), pypool::BrokenProcessPool);
    }
    ::unlink(path.c_str());
}

BOOST_AUTO_TEST_CASE(join_reaps_every_worker) {
    for (StartMethod m : all_methods) {
        std::vector<int> pids;
        {
            pypool::ProcessPool pool(opts(m, 3));
            for (int i = 0; i < 9; ++i) pids.push_back(pool.apply(getpid_task));
            pool.close();
            pool.join();
            for (int pid : pids) BOOST_TEST(::kill(pid, 0) == -1);  // gone, not even a zombie
        }
    }
}

namespace {
void init_aborts() { std::abort(); }
int die(int how) {
    if (how == 0) std::abort();
    if (how == 1) ::_exit(3);
    if (how == 2) std::terminate();
    if (how == 3) ::kill(::getpid(), SIGKILL);
    return how;
}
}  // namespace

BOOST_AUTO_TEST_CASE(an_initializer_that_kills_the_worker_fails_the_constructor) {
    for (StartMethod m : all_methods) {
        auto o = opts(m, 1);
        o.initializer = init_aborts;
        BOOST_CHECK_EXCEPTION(pypool::ProcessPool{o}, pypool::RuntimeError,
                              [](const pypool::RuntimeError& e) {
                                  return std::string(e.what()).find("SIGABRT") != std::string::npos;
                              });
    }
}

BOOST_AUTO_TEST_CASE(each_kind_of_death_fails_only_its_task) {
    const char* expect[] = {"SIGABRT", "exited with status 3", "SIGABRT", "SIGKILL"};
    for (StartMethod m : all_methods) {
        pypool::ProcessPool pool(opts(m, 2));
        for (int how = 0; how < 4; ++how) {
            auto bad = pool.submit(die, how);
            std::vector<pypool::AsyncResult<int>> good;
            for (int i = 0; i < 20; ++i) good.push_back(pool.submit(die, 10 + i));
            BOOST_CHECK_EXCEPTION(bad.get(), pypool::BrokenProcessPool,
                                  [&](const pypool::BrokenProcessPool& e) {
                                      return std::string(e.what()).find(expect[how]) != std::string::npos;
                                  });
            for (int i = 0; i < 20; ++i) BOOST_TEST(good[static_cast<std::size_t>(i)].get() == 10 + i);
        }
    }
}

namespace {
struct Picky {
    int v = 0;
    template <class Archive>
    void save(Archive& ar) const {
        if (v < 0) throw std::runtime_error("negative Picky");
        ar(v);
    }
    template <class Archive>
    void load(Archive& ar) {
        ar(v);
        if (v == 13) throw std::runtime_error("unlucky Picky");
    }
};
int picky_value(Picky p) { return p.v; }
Picky make_picky(int v) { return Picky{v}; }
struct SubError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
int throw_sub(int) { throw SubError("sub"); }
int throw_bad_alloc(int) { throw std::bad_alloc(); }
}  // namespace

BOOST_AUTO_TEST_CASE(serialization_failures_fail_only_that_task) {
    pypool::ProcessPool pool(opts(StartMethod::forkserver, 1));
    BOOST_CHECK_THROW(pool.apply(picky_value, std::tuple{Picky{-1}}), pypool::SerializationError);
    BOOST_CHECK_THROW(pool.apply(picky_value, std::tuple{Picky{13}}), pypool::SerializationError);
    BOOST_CHECK_THROW(pool.apply(make_picky, std::tuple{-1}), pypool::SerializationError);
    BOOST_CHECK_THROW(pool.apply(make_picky, std::tuple{13}), pypool::SerializationError);
    BOOST_TEST(pool.apply(picky_value, std::tuple{Picky{5}}) == 5);
    BOOST_TEST(pool.map(make_picky, std::vector<int>{1, 2}).size() == 2U);
    BOOST_CHECK_THROW(pool.map(make_picky, std::vector<int>{1, 13}), pypool::SerializationError);
}

BOOST_AUTO_TEST_CASE(unregistered_subclasses_come_back_as_remote_error) {
    pypool::ProcessPool pool(opts(StartMethod::spawn, 1));
    BOOST_CHECK_EXCEPTION(pool.apply(throw_sub, std::tuple{1}), pypool::RemoteError,
                          [](const pypool::RemoteError& e) {
                              return e.type_name().find("SubError") != std::string::npos &&
                                     std::string(e.what()).ends_with(": sub");
                          });
    BOOST_CHECK_THROW(pool.apply(throw_bad_alloc, std::tuple{1}), std::bad_alloc);
}

namespace {
int sometimes_dies(int i) {
    if (i % 97 == 13) ::raise(SIGKILL);
    if (i % 89 == 7) throw std::runtime_error("failed " + std::to_string(i));
    return i;
}
}  // namespace

BOOST_AUTO_TEST_CASE(mixed_tasks_with_crashes_each_end_exactly_once) {
    for (StartMethod m : all_methods) {
        pypool::ProcessPool pool(opts(m, 2));
        constexpr int n = 1500;
        std::vector<int> calls(n, 0);  // touched only by callbacks (one thread)
        std::vector<pypool::AsyncResult<int>> rs;
        for (int i = 0; i < n; ++i)
            rs.push_back(pool.apply_async(sometimes_dies, std::tuple{i},
                                          {.callback = [&calls, i](const int&) { ++calls[static_cast<std::size_t>(i)]; },
                                           .error_callback = [&calls, i](std::exception_ptr) { ++calls[static_cast<std::size_t>(i)]; }}));
        int ok = 0, broken = 0, failed = 0;
        for (int i = 0; i < n; ++i) {
            try {
                BOOST_TEST(rs[static_cast<std::size_t>(i)].get() == i);
                ++ok;
            } catch (const pypool::BrokenProcessPool&) {
                BOOST_TEST(i % 97 == 13);
                ++broken;
            } catch (const std::runtime_error&) {
                BOOST_TEST(i % 89 == 7);
                ++failed;
            }
        }
        pool.close();
        pool.join();
        for (int c : calls) BOOST_TEST(c == 1);
        BOOST_TEST(broken == 16);  // i % 97 == 13 for i < 1500
        BOOST_TEST(ok + broken + failed == n);
    }
}

BOOST_AUTO_TEST_CASE(a_pool_starts_while_another_thread_holds_a_mutex) {
    // The exec-based methods never run code of this process in a child between fork and exec.
    static std::mutex held;
    std::latch locked(1), done(1);
    std::thread holder([&] {
        std::lock_guard lk(held);
        locked.count_down();
        done.wait();
    });
    locked.wait();
    for (StartMethod m : {StartMethod::spawn, StartMethod::forkserver}) {
        pypool::ProcessPool pool(opts(m, 2));
        BOOST_TEST(pool.apply([] {
            std::lock_guard lk(held);  // the worker's copy of the mutex is free
            return 1;
        }) == 1);
    }
    done.count_down();
    holder.join();
}
