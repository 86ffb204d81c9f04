// Ports of CPython's Lib/test/_test_multiprocessing.py pool tests (class _TestPool and
// _TestPoolWorkerErrors, ThreadPool flavour) for apply / apply_async / the lifecycle.
// Timing assertions of the originals (assertTimingAlmostEqual) are left out on purpose.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <typeinfo>
#include <vector>

#include <pypool/pypool.hpp>

namespace utf = boost::unit_test;
using namespace std::chrono_literals;
using pypool::AsyncResult;

namespace {

// sqr(x, wait=0.0, event=None) of the original: waits `wait` (or on `event`), returns x*x.
int sqr(int x) { return x * x; }
int sqr_after(int x, std::chrono::milliseconds wait) {
    std::this_thread::sleep_for(wait);  // makes the task last; nothing is timed
    return x * x;
}
int sqr_on_event(int x, std::latch* started, std::latch* event) {
    started->count_down();
    event->wait();
    return x * x;
}

// CountedObject of the original: counts live instances.
struct CountedObject {
    static std::atomic<int> instances;
    CountedObject() { ++instances; }
    CountedObject(const CountedObject&) { ++instances; }
    ~CountedObject() { --instances; }
    CountedObject& operator=(const CountedObject&) = default;
};
std::atomic<int> CountedObject::instances{0};

// The worker drops its own reference to a finished task's state just after waking the
// waiters, so a result held only by that state is freed a moment after the last handle goes
// (the original sleeps DELTA "to let threaded cleanup code run"). Spins until cond() holds;
// false after a generous bound.
template <class Cond>
bool eventually(Cond cond) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::yield();
    }
    return true;
}

std::shared_ptr<CountedObject> identity(std::shared_ptr<CountedObject> o) { return o; }

}  // namespace

// Ports _TestPool.test_apply: apply(sqr, (5,)) and apply(sqr, (), {'x': 3}).
BOOST_AUTO_TEST_CASE(apply_returns_the_function_result, *utf::timeout(60)) {
    pypool::ThreadPool pool(4);
    BOOST_TEST(pool.apply(sqr, std::tuple{5}) == sqr(5));
    // keyword arguments have no C++ equivalent: bind them in a lambda
    BOOST_TEST(pool.apply([] { return sqr(/*x=*/3); }) == sqr(3));
}

// Ports _TestPool.test_async: apply_async(sqr, (7, TIMEOUT1)).get() == 49.
BOOST_AUTO_TEST_CASE(apply_async_get_waits_for_the_result, *utf::timeout(60)) {
    pypool::ThreadPool pool(4);
    auto res = pool.apply_async(sqr_after, std::tuple{7, std::chrono::milliseconds(40)});
    BOOST_TEST(res.get() == 49);
}

// Ports _TestPool.test_async_timeout: get(timeout) on a task blocked on an event raises
// TimeoutError; then the event is set and the pool terminated and joined.
BOOST_AUTO_TEST_CASE(apply_async_get_with_timeout_raises_timeout_error, *utf::timeout(60)) {
    pypool::ThreadPool p(3);
    std::latch started(1), event(1);
    auto res = p.apply_async(sqr_on_event, std::tuple{6, &started, &event});
    BOOST_CHECK_THROW((void)res.get(50ms), pypool::TimeoutError);
    started.wait();  // so that terminate() finds it running, not queued
    event.count_down();
    p.terminate();
    p.join();
    BOOST_TEST(res.get() == 36);  // it was running, so terminate() let it finish
}

// Ports _TestPool.test_make_pool: Pool(-1) and Pool(0) raise ValueError; Pool(3) has 3 workers.
BOOST_AUTO_TEST_CASE(make_pool_rejects_non_positive_sizes_and_keeps_the_size,
                     *utf::timeout(60)) {
    BOOST_CHECK_THROW(pypool::ThreadPool(-1), pypool::ValueError);
    BOOST_CHECK_THROW(pypool::ThreadPool(0), pypool::ValueError);
    pypool::ThreadPool p(3);
    BOOST_TEST(p.size() == 3U);
    p.close();
    p.join();
}

// Ports _TestPool.test_terminate: many "forever" tasks, terminate(), join() must return.
// (The original submits them with map_async(chunksize=1); here one apply_async each.)
BOOST_AUTO_TEST_CASE(terminate_with_many_slow_tasks_queued_lets_join_return,
                     *utf::timeout(120)) {
    pypool::ThreadPool p(3);
    std::latch forever(1);  // released only after terminate() returned
    std::latch started(3);
    std::atomic<int> ran{0};
    std::vector<AsyncResult<void>> results;
    results.reserve(10'000);
    for (int i = 0; i < 10'000; ++i) {
        results.push_back(p.apply_async([&] {
            ++ran;
            started.count_down();
            forever.wait();
        }));
    }
    started.wait();
    p.terminate();
    forever.count_down();
    p.join();
    BOOST_TEST(ran.load() == 3);  // only the tasks already running
    int cancelled = 0;
    for (auto& r : results) cancelled += r.cancelled() ? 1 : 0;
    BOOST_TEST(cancelled == 10'000 - 3);
}

// Ports _TestPool.test_traceback (thread flavour) and test_wrapped_exception: the exception
// raised in the worker reaches the caller unwrapped, as the very same object.
BOOST_AUTO_TEST_CASE(exception_from_the_worker_is_the_same_object_unwrapped,
                     *utf::timeout(60)) {
    pypool::ThreadPool p(1);
    std::exception_ptr raised_in_worker;
    try {
        p.apply([&] {
            try {
                throw std::runtime_error("123");  // some comment
            } catch (...) {
                raised_in_worker = std::current_exception();
                throw;
            }
        });
        BOOST_FAIL("expected runtime_error");
    } catch (const std::exception& exc) {
        BOOST_TEST((typeid(exc) == typeid(std::runtime_error)));  // not a wrapper type
        BOOST_TEST(std::string(exc.what()) == "123");
        BOOST_TEST((std::current_exception() == raised_in_worker));  // identity
    }
    p.close();
    p.join();
}

// Ports _TestPoolWorkerErrors.test_async_error_callback: error_callback gets the KeyError.
BOOST_AUTO_TEST_CASE(apply_async_error_callback_receives_the_exception, *utf::timeout(60)) {
    pypool::ThreadPool p(2);
    std::exception_ptr scratchpad;
    auto res = p.apply_async([] { throw std::out_of_range("key"); }, std::tuple{},
                             {.error_callback = [&](std::exception_ptr exc) { scratchpad = exc; }});
    BOOST_CHECK_THROW(res.get(), std::out_of_range);
    BOOST_REQUIRE(scratchpad);
    BOOST_CHECK_THROW(std::rethrow_exception(scratchpad), std::out_of_range);
    p.close();
    p.join();
}

// Ports _TestPool.test_release_task_refs (issue #29861): task arguments and results are not
// kept alive once they have been delivered.
BOOST_AUTO_TEST_CASE(pool_keeps_no_reference_to_arguments_or_results, *utf::timeout(60)) {
    pypool::ThreadPool pool(4);
    std::vector<std::weak_ptr<CountedObject>> refs;
    {
        std::vector<std::shared_ptr<CountedObject>> objs;
        for (int i = 0; i < 10; ++i) objs.push_back(std::make_shared<CountedObject>());
        for (auto& o : objs) refs.push_back(o);
        std::vector<AsyncResult<std::shared_ptr<CountedObject>>> results;
        for (auto& o : objs) results.push_back(pool.apply_async(identity, std::tuple{o}));
        for (std::size_t i = 0; i < objs.size(); ++i) {
            BOOST_TEST(results[i].get() == objs[i]);
            // the argument copy is gone once the task ran; only ours and the result remain
            BOOST_TEST(objs[i].use_count() == 2);
        }
    }  // drops objs and the handles (with the results in them)
    for (auto& wr : refs) BOOST_TEST(eventually([&] { return wr.expired(); }));
    BOOST_TEST(CountedObject::instances.load() == 0);
}

BOOST_AUTO_TEST_CASE(arguments_are_released_as_soon_as_the_task_ran, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto arg = std::make_shared<int>(1);
    std::weak_ptr<int> watch = arg;
    auto r = pool.apply_async([](std::shared_ptr<int> p) { return *p; }, std::tuple{std::move(arg)});
    BOOST_TEST(r.get() == 1);
    BOOST_TEST(watch.expired());  // while the handle is still alive
}

BOOST_AUTO_TEST_CASE(callable_captures_are_released_as_soon_as_the_task_ran,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto captured = std::make_shared<int>(2);
    std::weak_ptr<int> watch = captured;
    auto r = pool.apply_async([c = std::move(captured)] { return *c; });
    BOOST_TEST(r.get() == 2);
    BOOST_TEST(watch.expired());
}

BOOST_AUTO_TEST_CASE(callback_captures_are_released_once_the_result_is_ready,
                     *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    auto on_ok = std::make_shared<int>(3);
    auto on_err = std::make_shared<int>(4);
    std::weak_ptr<int> watch_ok = on_ok;
    std::weak_ptr<int> watch_err = on_err;
    auto r = pool.apply_async([] { return 1; }, std::tuple{},
                              {.callback = [c = std::move(on_ok)](const int&) {},
                               .error_callback = [c = std::move(on_err)](std::exception_ptr) {}});
    r.get();
    BOOST_TEST(watch_ok.expired());
    BOOST_TEST(watch_err.expired());  // the callback not called is released too
}

BOOST_AUTO_TEST_CASE(result_is_released_when_the_last_handle_goes, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::weak_ptr<int> watch;
    {
        auto r = pool.apply_async([] { return std::make_shared<int>(5); });
        watch = r.get();
        BOOST_TEST(!watch.expired());  // the handle keeps the result
        auto copy = r;
    }
    BOOST_TEST(eventually([&] { return watch.expired(); }));
}

BOOST_AUTO_TEST_CASE(cancelled_task_releases_its_arguments, *utf::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::latch release(1), started(1);
    pool.apply_async([&] {
        started.count_down();
        release.wait();
    });
    auto arg = std::make_shared<int>(6);
    std::weak_ptr<int> watch = arg;
    auto r = pool.apply_async([](std::shared_ptr<int> p) { return *p; }, std::tuple{std::move(arg)});
    started.wait();
    pool.terminate();
    release.count_down();
    pool.join();
    BOOST_CHECK_THROW((void)r.get(), pypool::CancelledError);
    BOOST_TEST(watch.expired());
}
