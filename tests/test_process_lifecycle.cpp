// ProcessPool lifecycle (issue 12, API.md section 11): close/join drain, terminate kills
// the workers and cancels running and queued tasks, max_tasks_per_child recycles workers
// without losing work, the initializer runs in every worker and a failing one makes the
// constructor throw, every start method works, a pool made while another thread holds a
// lock does not deadlock (forkserver, spawn), no worker outlives a parent killed with
// SIGKILL, a missing process_main is a clear RuntimeError, and workers carry their names.
#include "process_test_util.hpp"

#include <signal.h>
#include <unistd.h>

#include <cereal/types/string.hpp>

#include <atomic>
#include <csignal>
#include <latch>
#include <mutex>
#include <ranges>

#include <range/v3/view/iota.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace utf = boost::unit_test;
using namespace std::chrono_literals;

namespace ptest_lifecycle {

int g_initialized_in = 0;  // set by the initializer, in the worker process
std::mutex g_lock;         // held by another thread of the parent in one test

void init_worker() { g_initialized_in = static_cast<int>(::getpid()); }
void init_throws() { throw std::runtime_error("initializer refuses"); }
void init_exits() { ::_exit(9); }

int my_pid() { return static_cast<int>(::getpid()); }
int pid_of_item(int) { return static_cast<int>(::getpid()); }
int square(int x) { return x * x; }
bool initialized_here() { return g_initialized_in == static_cast<int>(::getpid()); }
int take_the_lock(int x) {
    std::lock_guard lk(g_lock);  // a fresh process: the parent's holder is not here
    return x;
}
int sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}
int block_until_killed(const std::string& path) {
    {
        std::ofstream out(path + ".tmp");
        out << ::getpid() << std::flush;
    }
    std::filesystem::rename(path + ".tmp", path);
    for (;;) ::pause();
}
bool signals_are_default() {
    for (int sig : {SIGTERM, SIGINT}) {
        struct sigaction sa {};
        ::sigaction(sig, nullptr, &sa);
        if (sa.sa_handler != SIG_DFL) return false;
    }
    return true;
}
int segfault(int) {
    if (PYPOOL_TEST_SANITIZED) std::signal(SIGSEGV, SIG_DFL);
    volatile int* p = nullptr;
    *p = 1;
    return 0;
}

/// A pool with every start method runs tasks, a map, survives a crash.
void exercise(pypool::StartMethod m) {
    BOOST_TEST_CONTEXT("start method " << ptest::method_name(m)) {
        pypool::ProcessPool pool(ptest::options(2, m));
        BOOST_TEST(pool.apply(square, std::tuple{7}) == 49);
        BOOST_TEST(pool.apply(my_pid) != static_cast<int>(::getpid()));
        BOOST_TEST((pool.map(square, ranges::views::iota(0, 100), 3).at(99) == 99 * 99));
        BOOST_CHECK_THROW(pool.submit(segfault, 0).result(60s), pypool::BrokenProcessPool);
        BOOST_TEST(pool.submit(square, 8).result(60s) == 64);
        pool.close();
        pool.join();
    }
}

}  // namespace ptest_lifecycle

using namespace ptest_lifecycle;

BOOST_AUTO_TEST_SUITE(process_lifecycle)

BOOST_AUTO_TEST_CASE(close_and_join_drain_accepted_work, *utf::timeout(120)) {
    pypool::ProcessPool pool(ptest::options(2));
    std::vector<pypool::Future<int>> fs;
    for (int i = 0; i < 40; ++i) fs.push_back(pool.submit(square, i));
    pool.close();
    BOOST_CHECK_THROW(pool.submit(square, 1), pypool::ValueError);
    pool.join();
    for (int i = 0; i < 40; ++i) {
        BOOST_TEST(fs[static_cast<std::size_t>(i)].ready());
        BOOST_TEST(fs[static_cast<std::size_t>(i)].get() == i * i);
    }
}

BOOST_AUTO_TEST_CASE(join_while_running_is_a_value_error, *utf::timeout(120)) {
    pypool::ProcessPool pool(ptest::options(1));
    BOOST_CHECK_THROW(pool.join(), pypool::ValueError);
    pool.close();
    pool.join();
}

BOOST_AUTO_TEST_CASE(shutdown_refuses_new_futures_with_runtime_error, *utf::timeout(120)) {
    pypool::ProcessPool pool(ptest::options(1));
    auto f = pool.submit(square, 3);
    pool.shutdown();
    BOOST_TEST(f.result() == 9);
    BOOST_CHECK_THROW(pool.submit(square, 1), pypool::RuntimeError);
}

BOOST_AUTO_TEST_CASE(join_reaps_every_worker, *utf::timeout(120)) {
    std::set<int> pids;
    {
        pypool::ProcessPool pool(ptest::options(2));
        for (int p : pool.map(pid_of_item, ranges::views::iota(0, 100), 1)) pids.insert(p);
        pool.close();
        pool.join();
        // join() returns once every worker has exited and been reaped: no zombie either.
        for (int p : pids) BOOST_TEST(ptest::proc_state(p) == 0, "worker " << p << " still listed");
    }
}

BOOST_AUTO_TEST_CASE(the_destructor_drains_and_leaves_no_worker, *utf::timeout(120)) {
    std::set<int> pids;
    std::vector<pypool::Future<int>> fs;
    {
        pypool::ProcessPool pool(ptest::options(2));
        for (int p : pool.map(pid_of_item, ranges::views::iota(0, 50), 1)) pids.insert(p);
        for (int i = 0; i < 10; ++i) fs.push_back(pool.submit(sleep_ms, 10));
    }
    for (auto& f : fs) BOOST_TEST(f.get() == 10);
    for (int p : pids) BOOST_TEST(ptest::proc_state(p) == 0, "worker " << p << " still listed");
}

BOOST_AUTO_TEST_CASE(terminate_kills_workers_and_cancels_running_and_queued_tasks, *utf::timeout(120)) {
    ptest::TempDir dir;
    pypool::ProcessPool pool(ptest::options(2));
    std::atomic<int> cancelled_callbacks{0};
    std::vector<pypool::Future<int>> running, queued;
    for (int i = 0; i < 2; ++i)
        running.push_back(pool.apply_async(block_until_killed, std::tuple{dir.file("started" + std::to_string(i))},
                                           {.error_callback = [&](std::exception_ptr e) {
                                               try {
                                                   std::rethrow_exception(e);
                                               } catch (const pypool::CancelledError&) {
                                                   ++cancelled_callbacks;
                                               } catch (...) {
                                               }
                                           }}));
    for (int i = 0; i < 5; ++i) queued.push_back(pool.submit(square, i));
    std::vector<pid_t> pids;
    for (int i = 0; i < 2; ++i) {
        const std::string f = dir.file("started" + std::to_string(i));
        BOOST_TEST_REQUIRE(ptest::eventually([&] { return !ptest::read_file(f).empty(); }, 60s));
        pids.push_back(static_cast<pid_t>(std::stol(ptest::read_file(f))));
    }
    pool.terminate();
    pool.join();
    for (auto& f : running) {
        BOOST_TEST(f.cancelled());
        BOOST_CHECK_THROW(f.get(), pypool::CancelledError);
    }
    for (auto& f : queued) {
        BOOST_TEST(f.done());
        if (!f.cancelled()) BOOST_TEST(f.get() >= 0);  // one may have run before terminate
    }
    BOOST_TEST(cancelled_callbacks.load() == 2);
    for (pid_t p : pids) BOOST_TEST(ptest::proc_state(p) == 0, "worker " << p << " still listed");
    BOOST_CHECK_THROW(pool.submit(square, 1), pypool::ValueError);
}

BOOST_AUTO_TEST_CASE(max_tasks_per_child_one_gives_a_new_process_per_task, *utf::timeout(300)) {
    auto o = ptest::options(2);
    o.max_tasks_per_child = 1;
    pypool::ProcessPool pool(o);
    std::vector<pypool::Future<int>> fs;
    for (int i = 0; i < 200; ++i) fs.push_back(pool.submit(my_pid));
    std::set<int> pids;
    for (auto& f : fs) pids.insert(f.result(120s));
    BOOST_TEST(pids.size() == 200U);
    // a map chunk counts as one task
    const auto chunked = pool.map(pid_of_item, ranges::views::iota(0, 40), 10);
    BOOST_TEST(std::set<int>(chunked.begin(), chunked.end()).size() == 4U);
}

BOOST_AUTO_TEST_CASE(max_tasks_per_child_zero_is_a_value_error, *utf::timeout(60)) {
    auto o = ptest::options(1);
    o.max_tasks_per_child = 0;
    BOOST_CHECK_THROW(pypool::ProcessPool{o}, pypool::ValueError);
}

BOOST_AUTO_TEST_CASE(processes_below_one_is_a_value_error, *utf::timeout(60)) {
    BOOST_CHECK_THROW(pypool::ProcessPool{0}, pypool::ValueError);
    BOOST_CHECK_THROW(pypool::ProcessPool{ptest::options(-1)}, pypool::ValueError);
}

BOOST_AUTO_TEST_CASE(the_initializer_runs_in_every_worker_also_replacements, *utf::timeout(120)) {
    auto o = ptest::options(2);
    o.initializer = init_worker;
    o.max_tasks_per_child = 3;
    pypool::ProcessPool pool(o);
    std::vector<pypool::Future<bool>> fs;
    for (int i = 0; i < 30; ++i) fs.push_back(pool.submit(initialized_here));
    for (auto& f : fs) BOOST_TEST(f.result(60s));
    BOOST_TEST(g_initialized_in == 0);  // never in the parent
}

BOOST_AUTO_TEST_CASE(a_throwing_initializer_makes_the_constructor_throw, *utf::timeout(120)) {
    for (auto m : ptest::all_methods()) {
        BOOST_TEST_CONTEXT(ptest::method_name(m)) {
            auto o = ptest::options(2, m);
            o.initializer = init_throws;
            try {
                pypool::ProcessPool pool(o);
                BOOST_ERROR("the constructor did not throw");
            } catch (const pypool::RuntimeError& e) {
                BOOST_TEST_MESSAGE("RuntimeError: " << e.what());
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(an_initializer_that_kills_its_process_makes_the_constructor_throw, *utf::timeout(120)) {
    auto o = ptest::options(1);
    o.initializer = init_exits;
    BOOST_CHECK_THROW(pypool::ProcessPool{o}, pypool::RuntimeError);
}

BOOST_AUTO_TEST_CASE(every_start_method_runs_tasks_and_survives_a_crash, *utf::timeout(300)) {
    for (auto m : ptest::all_methods()) exercise(m);
}

BOOST_AUTO_TEST_CASE(workers_start_with_default_signal_dispositions, *utf::timeout(120)) {
    // The parent ignores SIGTERM and SIGINT; workers must not inherit that.
    auto old_term = std::signal(SIGTERM, SIG_IGN);
    auto old_int = std::signal(SIGINT, SIG_IGN);
    for (auto m : ptest::all_methods()) {
        BOOST_TEST_CONTEXT(ptest::method_name(m)) {
            pypool::ProcessPool pool(ptest::options(1, m));
            BOOST_TEST(pool.apply(signals_are_default));
        }
    }
    std::signal(SIGTERM, old_term);
    std::signal(SIGINT, old_int);
}

BOOST_AUTO_TEST_CASE(a_pool_made_while_another_thread_holds_a_lock_does_not_deadlock, *utf::timeout(300)) {
    for (auto m : {pypool::StartMethod::forkserver, pypool::StartMethod::spawn}) {
        BOOST_TEST_CONTEXT(ptest::method_name(m)) {
            std::latch locked(1), release(1);
            std::atomic<bool> stop{false};
            std::thread holder([&] {
                std::lock_guard lk(g_lock);
                locked.count_down();
                release.wait();
            });
            std::thread churn([&] {  // malloc's locks taken all the time meanwhile
                while (!stop.load()) {
                    std::vector<std::string> v(64, std::string(100, 'x'));
                }
            });
            locked.wait();
            {
                pypool::ProcessPool pool(ptest::options(4, m));
                std::vector<pypool::Future<int>> fs;
                for (int i = 0; i < 20; ++i) fs.push_back(pool.submit(take_the_lock, i));
                for (int i = 0; i < 20; ++i) {
                    auto& f = fs[static_cast<std::size_t>(i)];
                    BOOST_TEST(f.wait(60s), "task " << i << " hangs");
                    if (f.ready()) BOOST_TEST(f.get() == i);
                }
                pool.terminate();
                pool.join();
            }
            release.count_down();
            stop = true;
            holder.join();
            churn.join();
        }
    }
}

BOOST_AUTO_TEST_CASE(no_worker_outlives_a_parent_killed_with_sigkill, *utf::timeout(300)) {
    for (auto m : ptest::all_methods()) {
        BOOST_TEST_CONTEXT(ptest::method_name(m)) {
            ptest::Child child({ptest::self_dir() + "/process_orphan_helper", ptest::method_name(m)});
            std::set<pid_t> workers;
            std::string line;
            bool ready = false;
            while (child.read_line(line, 60s)) {
                if (line.rfind("pid ", 0) == 0) workers.insert(static_cast<pid_t>(std::stol(line.substr(4))));
                if (line == "ready") {
                    ready = true;
                    break;
                }
            }
            BOOST_TEST_REQUIRE(ready, "the helper did not get ready");
            BOOST_TEST(workers.size() == 2U);
            for (pid_t p : ptest::descendants(child.pid())) workers.insert(p);  // also the fork server
            child.kill(SIGKILL);
            child.wait(60s);
            for (pid_t p : workers)
                BOOST_TEST(ptest::eventually([&] { return !ptest::alive(p); }, 20s),
                           "process " << p << " (" << ptest::comm_of(p) << ") outlived its parent");
        }
    }
}

BOOST_AUTO_TEST_CASE(a_missing_process_main_is_a_clear_runtime_error, *utf::timeout(300)) {
    for (auto m : {pypool::StartMethod::forkserver, pypool::StartMethod::spawn}) {
        BOOST_TEST_CONTEXT(ptest::method_name(m)) {
            ptest::Child child({ptest::self_dir() + "/process_no_main_helper", ptest::method_name(m)});
            const std::string out = child.read_all(120s);
            const int st = child.wait(120s);
            BOOST_TEST(st != -1, "the helper hung");
            BOOST_TEST((WIFEXITED(st) && WEXITSTATUS(st) == 0), "output: " << out);
            BOOST_TEST(ptest::contains(out, "RuntimeError: "), "output: " << out);
            BOOST_TEST(ptest::contains(out, "process_main"), "output: " << out);
            // nothing of it is left running (its children went with it)
            BOOST_TEST(ptest::descendants(child.pid()).empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(workers_are_named_prefix_dash_slot, *utf::timeout(120)) {
    for (auto m : ptest::all_methods()) {
        BOOST_TEST_CONTEXT(ptest::method_name(m)) {
            auto o = ptest::options(2, m);
            o.name_prefix = "pnames";
            pypool::ProcessPool pool(o);
            std::set<std::string> names;
            for (int round = 0; round < 50 && names.size() < 2; ++round) {
                auto pids = pool.map(pid_of_item, ranges::views::iota(0, 64), 1);
                for (int p : std::set<int>(pids.begin(), pids.end())) names.insert(ptest::comm_of(p));
            }
            BOOST_TEST((names == std::set<std::string>{"pnames-0", "pnames-1"}));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_replacement_takes_its_slots_name, *utf::timeout(120)) {
    auto o = ptest::options(1);
    o.name_prefix = "pslot";
    pypool::ProcessPool pool(o);
    BOOST_CHECK_THROW(pool.submit(segfault, 0).result(60s), pypool::BrokenProcessPool);
    const int pid = pool.apply(my_pid);
    BOOST_TEST(ptest::comm_of(pid) == "pslot-0");
}

BOOST_AUTO_TEST_CASE(a_long_prefix_is_cut_to_fit_linux_names, *utf::timeout(120)) {
    auto o = ptest::options(1);
    o.name_prefix = "averyveryverylongprefix";
    pypool::ProcessPool pool(o);
    const std::string name = ptest::comm_of(pool.apply(my_pid));
    BOOST_TEST(name.size() <= 15U);
    BOOST_TEST(name.size() >= 3U);
    BOOST_TEST(name.substr(name.size() - 2) == "-0", "name " << name);
    BOOST_TEST(std::string("averyveryverylongprefix").rfind(name.substr(0, name.size() - 2), 0) == 0U);
}

BOOST_AUTO_TEST_SUITE_END()
