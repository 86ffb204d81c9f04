// Faults (issue 6): every exception, whatever its type and wherever it is thrown (a task, a
// callback, an error callback, a done callback, the initializer, the input range, the
// result type's copy or move constructor, std::bad_alloc), ends in a documented outcome,
// and nothing else is lost: every other task still runs, later callbacks still run, join()
// returns and the stats add up. Also a callback calling terminate() and a task calling
// close() on its own pool.
#include <boost/test/unit_test.hpp>

#include <pypool/pypool.hpp>

#include "thread_count.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <iterator>
#include <latch>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {
using namespace std::chrono_literals;

/// An exception type not derived from std::exception.
struct Boom {
    int code = 0;
};

/// The code of a Boom thrown by fn, or -1 if it threw something else or nothing.
template <class F>
int boom_code(F&& fn) {
    try {
        fn();
    } catch (const Boom& b) {
        return b.code;
    } catch (...) {
        return -2;
    }
    return -1;
}

/// The int thrown by fn, or -1.
template <class F>
int int_thrown(F&& fn) {
    try {
        fn();
    } catch (int v) {
        return v;
    } catch (...) {
        return -2;
    }
    return -1;
}

using test_threads::thread_count;
using test_threads::thread_count_settled;

/// Records what on_callback_error was told (called on the callback thread).
struct ErrorSink {
    std::mutex m;
    std::vector<std::exception_ptr> errors;
    std::atomic<std::size_t> count{0};
    std::function<void(std::exception_ptr)> handler() {
        return [this](std::exception_ptr e) {
            {
                std::lock_guard lk(m);
                errors.push_back(e);
            }
            count.fetch_add(1);
        };
    }
    std::vector<std::exception_ptr> snapshot() {
        std::lock_guard lk(m);
        return errors;
    }
};

// ---- an input range whose iteration throws at position k ----------------------------------

enum class ThrowAt { increment, dereference };

/// A forward range over 0..n-1 (lvalue elements when Lvalue, else prvalues) whose
/// operator++ (moving to position k) or operator* (at position k) throws Boom{k}.
template <bool Lvalue>
class FaultyRange {
public:
    FaultyRange(int n, int k, ThrowAt where) : data_(std::make_shared<std::vector<int>>()), n_(n), k_(k), where_(where) {
        for (int i = 0; i < n; ++i) data_->push_back(i);
    }

    class iterator {
    public:
        using value_type = int;
        using difference_type = std::ptrdiff_t;
        using reference = std::conditional_t<Lvalue, const int&, int>;
        using iterator_concept = std::forward_iterator_tag;
        using iterator_category = std::forward_iterator_tag;
        iterator() = default;
        iterator(const FaultyRange* r, int pos) : r_(r), pos_(pos) {}
        reference operator*() const {
            if (r_->where_ == ThrowAt::dereference && pos_ == r_->k_) throw Boom{pos_};
            return (*r_->data_)[static_cast<std::size_t>(pos_)];
        }
        iterator& operator++() {
            if (r_->where_ == ThrowAt::increment && pos_ + 1 == r_->k_) throw Boom{pos_ + 1};
            ++pos_;
            return *this;
        }
        iterator operator++(int) {
            iterator t = *this;
            ++*this;
            return t;
        }
        friend bool operator==(const iterator& a, const iterator& b) { return a.pos_ == b.pos_; }

    private:
        const FaultyRange* r_ = nullptr;
        int pos_ = 0;
    };
    iterator begin() const { return iterator(this, 0); }
    iterator end() const { return iterator(this, n_); }

private:
    std::shared_ptr<std::vector<int>> data_;
    int n_, k_;
    ThrowAt where_;
};
static_assert(std::ranges::forward_range<FaultyRange<true>>);
static_assert(std::ranges::forward_range<FaultyRange<false>>);

/// What an imap iterator yields, drained with next(): values, "B<code>" for a Boom, then "end".
template <class Item>
std::vector<std::string> drain(pypool::IMapIterator<Item>& it) {
    std::vector<std::string> out;
    for (int guard = 0; guard < 10000; ++guard) {
        try {
            auto v = it.next();
            if (!v) {
                out.push_back("end");
                return out;
            }
            out.push_back(std::to_string(*v));
        } catch (const Boom& b) {
            out.push_back("B" + std::to_string(b.code));
        } catch (int i) {
            out.push_back("I" + std::to_string(i));
        }
    }
    out.push_back("no end");
    return out;
}

// ---- a result type whose copy or move constructor throws -----------------------------------

/// Copying throws Boom{100 + v} and moving Boom{200 + v} while armed: armed for value v
/// (or -2 for every value) and after skipping the first `skip` such copies/moves.
struct Fragile {
    static inline std::atomic<int> move_for{-1}, copy_for{-1};
    static inline std::atomic<int> move_skip{0}, copy_skip{0};
    static void disarm() {
        move_for = -1;
        copy_for = -1;
        move_skip = 0;
        copy_skip = 0;
    }
    int v = 0;
    explicit Fragile(int x) : v(x) {}
    Fragile(const Fragile& o) : v(o.v) {
        const int f = copy_for.load();
        if ((f == -2 || f == v) && copy_skip.fetch_sub(1) <= 0) throw Boom{100 + v};
    }
    Fragile(Fragile&& o) noexcept(false) : v(o.v) {
        const int f = move_for.load();
        if ((f == -2 || f == v) && move_skip.fetch_sub(1) <= 0) throw Boom{200 + v};
    }
    Fragile& operator=(const Fragile&) = default;
    Fragile& operator=(Fragile&&) = default;
    ~Fragile() = default;
};

struct FragileGuard {
    FragileGuard() { Fragile::disarm(); }
    ~FragileGuard() { Fragile::disarm(); }
};

}  // namespace

// ==== exceptions of any type from a task ========================================================

BOOST_AUTO_TEST_CASE(task_throwing_non_std_exceptions_delivers_them_and_every_other_task_runs,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(3);
    std::atomic<int> ran{0};
    std::vector<pypool::AsyncResult<int>> rs;
    for (int i = 0; i < 60; ++i) {
        rs.push_back(pool.submit([&ran, i]() -> int {
            ran.fetch_add(1);
            if (i % 3 == 0) throw 42;
            if (i % 3 == 1) throw Boom{i};
            return i;
        }));
    }
    for (int i = 0; i < 60; ++i) {
        if (i % 3 == 0) {
            BOOST_TEST(int_thrown([&] { (void)rs[i].get(); }) == 42);
        } else if (i % 3 == 1) {
            BOOST_TEST(boom_code([&] { (void)rs[i].get(); }) == i);
            BOOST_TEST(boom_code([&] { (void)rs[i].result(); }) == i);
        } else {
            BOOST_TEST(rs[i].get() == i);
        }
    }
    // every get() rethrows the same stored object
    const Boom* first = nullptr;
    const Boom* second = nullptr;
    try { (void)rs[1].get(); } catch (const Boom& b) { first = &b; }
    try { (void)rs[1].get(); } catch (const Boom& b) { second = &b; }
    BOOST_TEST((first != nullptr && first == second));
    BOOST_TEST(!rs[1].successful());
    BOOST_TEST(static_cast<bool>(rs[1].exception()));
    BOOST_TEST(pool.apply([] { return 7; }) == 7);  // the pool carries on
    pool.close();
    pool.join();
    BOOST_TEST(ran.load() == 60);
    const auto s = pool.stats();
    BOOST_TEST(s.submitted == 61u);
    BOOST_TEST(s.failed == 40u);
    BOOST_TEST(s.completed == 21u);
    BOOST_TEST(s.cancelled == 0u);
}

BOOST_AUTO_TEST_CASE(task_throwing_bad_alloc_delivers_it_and_the_pool_carries_on,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    auto r = pool.submit([]() -> int { throw std::bad_alloc(); });
    BOOST_CHECK_THROW((void)r.get(), std::bad_alloc);
    BOOST_CHECK_THROW(pool.map([](int i) -> int { if (i == 3) throw std::bad_alloc(); return i; },
                               std::vector{1, 2, 3, 4}),
                      std::bad_alloc);
    auto it = pool.imap([](int i) -> int { if (i == 1) throw std::bad_alloc(); return i; },
                        std::vector{0, 1, 2});
    BOOST_TEST(it.next().value() == 0);
    BOOST_CHECK_THROW((void)it.next(), std::bad_alloc);
    BOOST_TEST(it.next().value() == 2);
    BOOST_TEST(!it.next().has_value());
    BOOST_TEST(pool.apply([] { return 5; }) == 5);
    pool.close();
    pool.join();
    const auto s = pool.stats();
    BOOST_TEST(s.completed + s.failed == s.submitted);
}

BOOST_AUTO_TEST_CASE(map_items_throwing_non_std_exceptions_fail_with_lowest_position_and_all_run,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(3);
    std::atomic<int> ran{0};
    std::vector<int> xs(100);
    for (int i = 0; i < 100; ++i) xs[static_cast<std::size_t>(i)] = i;
    auto f = [&ran](int i) -> int {
        ran.fetch_add(1);
        if (i == 50) throw 42;
        if (i == 10 || i == 70) throw Boom{i};
        return i;
    };
    BOOST_TEST(boom_code([&] { (void)pool.map(f, xs, 3); }) == 10);
    BOOST_TEST(ran.load() == 100);
    ran = 0;
    std::vector<std::tuple<int>> ts;
    for (int i = 0; i < 100; ++i) ts.emplace_back(i);
    BOOST_TEST(boom_code([&] { (void)pool.starmap(f, ts, 7); }) == 10);
    BOOST_TEST(ran.load() == 100);
    ran = 0;
    std::promise<std::exception_ptr> got;
    auto m = pool.map_async(f, xs, {.chunksize = 1,
                                    .callback = [](const std::vector<int>&) {},
                                    .error_callback = [&got](std::exception_ptr e) { got.set_value(e); }});
    BOOST_TEST(boom_code([&] { (void)m.get(); }) == 10);
    BOOST_TEST(boom_code([&] { std::rethrow_exception(got.get_future().get()); }) == 10);
    BOOST_TEST(ran.load() == 100);
    BOOST_TEST(m.completed() == 100u);
    BOOST_TEST(pool.map([](int i) { return i * 2; }, std::vector{1, 2, 3}) == (std::vector{2, 4, 6}));
    pool.close();
    pool.join();
}

BOOST_AUTO_TEST_CASE(imap_items_throwing_non_std_exceptions_throw_at_their_position_and_all_run,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(3);
    std::atomic<int> ran{0};
    auto f = [&ran](int i) -> int {
        ran.fetch_add(1);
        if (i % 4 == 1) throw 42;
        if (i % 4 == 2) throw Boom{i};
        return i;
    };
    std::vector<int> xs{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    for (std::size_t cs : {1u, 3u}) {
        ran = 0;
        auto it = pool.imap(f, xs, cs);
        const std::vector<std::string> want{"0", "I42", "B2", "3", "4", "I42", "B6", "7", "8", "I42", "end"};
        BOOST_TEST(drain(it) == want, boost::test_tools::per_element());
        BOOST_TEST(ran.load() == 10);
        ran = 0;
        auto un = pool.imap_unordered(f, xs, cs);
        auto got = drain(un);
        BOOST_TEST(got.back() == "end");
        got.pop_back();
        std::multiset<std::string> gs(got.begin(), got.end()), ws(want.begin(), want.end() - 1);
        BOOST_TEST((gs == ws));
        BOOST_TEST(ran.load() == 10);
    }
    pool.close();
    pool.join();
}

// ==== callbacks, error callbacks, done callbacks =================================================

BOOST_AUTO_TEST_CASE(callback_throwing_non_std_exception_fails_its_result_and_on_callback_error_is_told,
                     *boost::unit_test::timeout(60)) {
    ErrorSink sink;
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .on_callback_error = sink.handler()});
    std::atomic<int> error_callbacks{0}, later{0};
    auto r = pool.apply_async([] { return 1; }, std::tuple{},
                              {.callback = [](const int&) { throw Boom{3}; },
                               .error_callback = [&](std::exception_ptr) { error_callbacks++; }});
    BOOST_TEST(boom_code([&] { (void)r.get(); }) == 3);
    BOOST_TEST(!r.successful());
    BOOST_TEST(error_callbacks.load() == 0);  // a throwing callback does not call error_callback
    BOOST_TEST(sink.count.load() == 1u);      // told before the result became ready
    BOOST_TEST(boom_code([&] { std::rethrow_exception(sink.snapshot().at(0)); }) == 3);
    auto v = pool.apply_async([] {}, std::tuple{}, {.callback = [] { throw 42; }});
    BOOST_TEST(int_thrown([&] { v.get(); }) == 42);
    // later tasks and callbacks work
    std::vector<pypool::AsyncResult<int>> rs;
    for (int i = 0; i < 20; ++i)
        rs.push_back(pool.apply_async([i] { return i; }, std::tuple{}, {.callback = [&](const int&) { later++; }}));
    for (int i = 0; i < 20; ++i) BOOST_TEST(rs[static_cast<std::size_t>(i)].get() == i);
    BOOST_TEST(later.load() == 20);
    pool.close();
    pool.join();
    BOOST_TEST(sink.count.load() == 2u);
    const auto s = pool.stats();
    BOOST_TEST(s.submitted == 22u);
    BOOST_TEST(s.failed == 2u);  // a task whose callback threw counts as failed
    BOOST_TEST(s.completed == 20u);
}

BOOST_AUTO_TEST_CASE(error_callback_throwing_replaces_the_error_and_the_pool_carries_on,
                     *boost::unit_test::timeout(60)) {
    ErrorSink sink;
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .on_callback_error = sink.handler()});
    auto r = pool.apply_async([]() -> int { throw 42; }, std::tuple{},
                              {.error_callback = [](std::exception_ptr) { throw Boom{4}; }});
    BOOST_TEST(boom_code([&] { (void)r.get(); }) == 4);  // the error_callback's exception
    BOOST_TEST(sink.count.load() == 1u);
    std::atomic<int> ecbs{0};
    auto r2 = pool.apply_async([]() -> int { throw 7; }, std::tuple{},
                               {.error_callback = [&](std::exception_ptr) { ecbs++; }});
    BOOST_TEST(int_thrown([&] { (void)r2.get(); }) == 7);
    BOOST_TEST(ecbs.load() == 1);
    pool.close();
    pool.join();
    BOOST_TEST(sink.count.load() == 1u);
    BOOST_TEST(pool.stats().failed == 2u);
}

BOOST_AUTO_TEST_CASE(error_callback_throwing_for_a_cancelled_task_keeps_it_cancelled,
                     *boost::unit_test::timeout(60)) {
    ErrorSink sink;
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 1, .on_callback_error = sink.handler()});
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto blocker = pool.submit([gate] { gate.wait(); return 1; });
    auto r = pool.apply_async([] { return 2; }, std::tuple{},
                              {.error_callback = [](std::exception_ptr) { throw Boom{5}; }});
    BOOST_TEST(r.cancel());
    BOOST_CHECK_THROW((void)r.get(), pypool::CancelledError);
    BOOST_TEST(r.cancelled());
    BOOST_TEST(sink.count.load() == 1u);
    BOOST_TEST(boom_code([&] { std::rethrow_exception(sink.snapshot().at(0)); }) == 5);
    go.set_value();
    BOOST_TEST(blocker.get() == 1);
    pool.close();
    pool.join();
    const auto s = pool.stats();
    BOOST_TEST(s.cancelled == 1u);
    BOOST_TEST(s.completed == 1u);
    BOOST_TEST(s.failed == 0u);
}

BOOST_AUTO_TEST_CASE(map_async_callback_throwing_fails_the_map_after_every_item_ran,
                     *boost::unit_test::timeout(60)) {
    ErrorSink sink;
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .on_callback_error = sink.handler()});
    std::atomic<int> ran{0};
    auto m = pool.map_async([&ran](int i) { ran++; return i; }, std::vector{1, 2, 3, 4, 5},
                            {.chunksize = 2, .callback = [](const std::vector<int>&) { throw 42; }});
    BOOST_TEST(int_thrown([&] { (void)m.get(); }) == 42);
    BOOST_TEST(ran.load() == 5);
    BOOST_TEST(sink.count.load() == 1u);
    BOOST_TEST(pool.map([](int i) { return i + 1; }, std::vector{1}) == std::vector{2});
    pool.close();
    pool.join();
}

BOOST_AUTO_TEST_CASE(done_callback_throwing_changes_nothing_and_later_done_callbacks_run,
                     *boost::unit_test::timeout(60)) {
    ErrorSink sink;
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 2, .on_callback_error = sink.handler()});
    std::promise<void> go;
    auto gate = go.get_future().share();
    auto r = pool.submit([gate] { gate.wait(); return 9; });
    std::promise<int> third;
    r.add_done_callback([](const pypool::AsyncResult<int>&) { throw 42; });
    r.add_done_callback([](const pypool::AsyncResult<int>&) { throw Boom{6}; });
    r.add_done_callback([&third](const pypool::AsyncResult<int>& x) { third.set_value(x.get()); });
    go.set_value();
    BOOST_TEST(r.get() == 9);
    BOOST_TEST(third.get_future().get() == 9);  // runs after the two that threw
    BOOST_TEST(sink.count.load() == 2u);
    // already done: runs on the callback thread at once, throws, is reported
    std::promise<void> after;
    r.add_done_callback([](const pypool::AsyncResult<int>&) { throw Boom{8}; });
    r.add_done_callback([&after](const pypool::AsyncResult<int>&) { after.set_value(); });
    after.get_future().get();
    BOOST_TEST(sink.count.load() == 3u);
    BOOST_TEST(r.successful());
    BOOST_TEST(r.get() == 9);
    pool.close();
    pool.join();
    const auto s = pool.stats();
    BOOST_TEST(s.completed == 1u);
    BOOST_TEST(s.failed == 0u);
    BOOST_TEST(s.callbacks_pending == 0u);
    // after join(): the done callback runs at once on the calling thread; its exception is
    // swallowed (reported on stderr), add_done_callback does not throw
    bool inline_ran = false;
    BOOST_CHECK_NO_THROW(r.add_done_callback([&](const pypool::AsyncResult<int>&) {
        inline_ran = true;
        throw Boom{10};
    }));
    BOOST_TEST(inline_ran);
}

BOOST_AUTO_TEST_CASE(on_callback_error_throwing_is_ignored_and_the_pool_carries_on,
                     *boost::unit_test::timeout(60)) {
    std::atomic<int> told{0};
    pypool::ThreadPool pool(pypool::PoolOptions{
        .processes = 2, .on_callback_error = [&](std::exception_ptr) { told++; throw Boom{11}; }});
    auto r = pool.apply_async([] { return 1; }, std::tuple{}, {.callback = [](const int&) { throw 42; }});
    BOOST_TEST(int_thrown([&] { (void)r.get(); }) == 42);
    BOOST_TEST(told.load() == 1);
    std::atomic<int> cbs{0};
    auto r2 = pool.apply_async([] { return 2; }, std::tuple{}, {.callback = [&](const int&) { cbs++; }});
    BOOST_TEST(r2.get() == 2);
    BOOST_TEST(cbs.load() == 1);
    pool.close();
    pool.join();
}

// ==== the initializer ============================================================================

BOOST_AUTO_TEST_CASE(initializer_throwing_non_std_exception_makes_the_constructor_throw_it,
                     *boost::unit_test::timeout(60)) {
    const std::size_t before = thread_count();
    BOOST_TEST(boom_code([] {
                   pypool::ThreadPool p(pypool::PoolOptions{.processes = 3, .initializer = [] { throw Boom{9}; }});
               }) == 9);
    BOOST_TEST(thread_count_settled(before) <= before);
    // only one worker's initializer fails
    std::atomic<int> calls{0};
    BOOST_TEST(int_thrown([&] {
                   pypool::ThreadPool p(pypool::PoolOptions{.processes = 4, .initializer = [&] {
                                                                if (calls.fetch_add(1) == 2) throw 42;
                                                            }});
               }) == 42);
    BOOST_TEST(calls.load() == 4);
    BOOST_TEST(thread_count_settled(before) <= before);
    auto failing = [] {
        pypool::ThreadPool p(pypool::PoolOptions{.processes = 2, .initializer = [] { throw std::bad_alloc(); }});
    };
    BOOST_CHECK_THROW(failing(), std::bad_alloc);
    BOOST_TEST(thread_count_settled(before) <= before);
    // a pool built afterwards works
    pypool::ThreadPool ok(pypool::PoolOptions{.processes = 2, .initializer = [] {}});
    BOOST_TEST(ok.apply([] { return 3; }) == 3);
}

// ==== the input range's iteration ===============================================================

BOOST_AUTO_TEST_CASE(map_input_throwing_makes_the_call_throw_and_runs_nothing,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::atomic<int> ran{0};
    auto f = [&ran](int i) { ran++; return i; };
    for (ThrowAt where : {ThrowAt::increment, ThrowAt::dereference}) {
        BOOST_TEST(boom_code([&] { (void)pool.map(f, FaultyRange<true>(10, 4, where)); }) == 4);
        BOOST_TEST(boom_code([&] { (void)pool.map(f, FaultyRange<false>(10, 4, where), 2); }) == 4);
        FaultyRange<true> lv(10, 0, where);  // lvalue range, throws at position 0
        if (where == ThrowAt::dereference)
            BOOST_TEST(boom_code([&] { (void)pool.map(f, lv); }) == 0);
        BOOST_TEST(boom_code([&] { (void)pool.map_async(f, FaultyRange<false>(10, 7, where)); }) == 7);
        // starmap over a range of tuples that throws
        FaultyRange<false> base(10, 3, where);
        auto tuples = base | std::views::transform([](int i) { return std::tuple<int>(i); });
        BOOST_TEST(boom_code([&] { (void)pool.starmap(f, tuples); }) == 3);
        BOOST_TEST(boom_code([&] { (void)pool.starmap_async(f, tuples); }) == 3);
    }
    BOOST_TEST(ran.load() == 0);  // map reads all input first: nothing was submitted
    BOOST_TEST(pool.stats().submitted == 0u);
    BOOST_TEST(pool.map(f, FaultyRange<true>(5, 99, ThrowAt::increment)) == (std::vector{0, 1, 2, 3, 4}));
    pool.close();
    pool.join();
}

BOOST_AUTO_TEST_CASE(imap_input_throwing_at_k_yields_items_before_k_then_the_error_then_the_end,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    std::atomic<int> ran{0};
    auto f = [&ran](int i) { ran++; return i; };
    for (ThrowAt where : {ThrowAt::increment, ThrowAt::dereference}) {
        for (std::size_t cs : {1u, 3u}) {
            for (std::size_t mif : {1u, 0u}) {
                const pypool::IMapOptions o{.chunksize = cs, .max_in_flight = mif};
                ran = 0;
                auto it = pool.imap(f, FaultyRange<true>(10, 5, where), o);
                BOOST_TEST(drain(it) == (std::vector<std::string>{"0", "1", "2", "3", "4", "B5", "end"}),
                           boost::test_tools::per_element());
                BOOST_TEST(ran.load() == 5);
                ran = 0;
                auto un = pool.imap_unordered(f, FaultyRange<false>(10, 5, where), o);
                auto got = drain(un);
                BOOST_REQUIRE(got.size() == 7u);
                BOOST_TEST(got[5] == "B5");
                BOOST_TEST(got[6] == "end");
                std::set<std::string> first(got.begin(), got.begin() + 5);
                BOOST_TEST((first == std::set<std::string>{"0", "1", "2", "3", "4"}));
                BOOST_TEST(ran.load() == 5);
                // at position 0: just the error
                auto z = pool.imap(f, FaultyRange<false>(10, 0, ThrowAt::dereference), o);
                BOOST_TEST(drain(z) == (std::vector<std::string>{"B0", "end"}), boost::test_tools::per_element());
            }
        }
    }
    // range-for: the error ends the loop at its position
    std::vector<int> seen;
    auto it = pool.imap(f, FaultyRange<false>(10, 3, ThrowAt::increment));
    BOOST_TEST(boom_code([&] { for (int v : it) seen.push_back(v); }) == 3);
    BOOST_TEST(seen == (std::vector{0, 1, 2}));
    BOOST_TEST(!it.next().has_value());
    // close, join, then iterate: join read the input and met the error on the way
    auto late = pool.imap(f, FaultyRange<true>(20, 12, ThrowAt::dereference), {.chunksize = 2, .max_in_flight = 1});
    pool.close();
    pool.join();
    auto got = drain(late);
    BOOST_REQUIRE(got.size() == 14u);
    BOOST_TEST(got[11] == "11");
    BOOST_TEST(got[12] == "B12");
    BOOST_TEST(got[13] == "end");
    const auto s = pool.stats();
    BOOST_TEST(s.completed + s.failed + s.cancelled == s.submitted);
}

// ==== the result type's copy and move constructors ===============================================

BOOST_AUTO_TEST_CASE(result_whose_move_throws_on_storing_fails_the_task_with_that_exception,
                     *boost::unit_test::timeout(60)) {
    FragileGuard guard;
    pypool::ThreadPool pool(2);
    Fragile::move_for = 5;  // storing the returned value moves it once
    std::atomic<int> callbacks{0}, error_callbacks{0};
    auto r = pool.apply_async([] { return Fragile(5); }, std::tuple{},
                              {.callback = [&](const Fragile&) { callbacks++; },
                               .error_callback = [&](std::exception_ptr) { error_callbacks++; }});
    BOOST_TEST(boom_code([&] { (void)r.get(); }) == 205);
    BOOST_TEST(callbacks.load() == 0);
    BOOST_TEST(error_callbacks.load() == 1);
    BOOST_TEST(pool.submit([] { return Fragile(6); }).get().v == 6);
    Fragile::disarm();
    pool.close();
    pool.join();
    BOOST_TEST(pool.stats().failed == 1u);
    BOOST_TEST(pool.stats().completed == 1u);
}

BOOST_AUTO_TEST_CASE(result_whose_copy_throws_fails_a_task_returning_a_reference,
                     *boost::unit_test::timeout(60)) {
    FragileGuard guard;
    static const Fragile shared(7);
    pypool::ThreadPool pool(2);
    Fragile::copy_for = 7;
    auto r = pool.submit([]() -> const Fragile& { return shared; });  // R is Fragile: one copy
    BOOST_TEST(boom_code([&] { (void)r.get(); }) == 107);
    std::atomic<int> ran{0};
    BOOST_TEST(boom_code([&] {
                   (void)pool.map([&ran](int i) -> const Fragile& { ran++; (void)i; return shared; },
                                  std::vector{1, 2, 3}, 1);
               }) == 107);
    BOOST_TEST(ran.load() == 3);
    Fragile::disarm();
    BOOST_TEST(pool.submit([]() -> const Fragile& { return shared; }).get().v == 7);
    pool.close();
    pool.join();
}

BOOST_AUTO_TEST_CASE(result_whose_copy_or_move_throws_get_const_ref_never_copies_and_get_rvalue_moves,
                     *boost::unit_test::timeout(60)) {
    FragileGuard guard;
    pypool::ThreadPool pool(2);
    std::promise<int> seen;
    auto r = pool.apply_async([] { return Fragile(3); }, std::tuple{},
                              {.callback = [&](const Fragile& f) { seen.set_value(f.v); }});
    r.wait();
    Fragile::copy_for = -2;
    Fragile::move_for = -2;
    BOOST_TEST(seen.get_future().get() == 3);
    BOOST_CHECK_NO_THROW((void)r.get());  // a reference: no copy, no move
    BOOST_TEST(r.get().v == 3);
    BOOST_TEST(r.result(1s).v == 3);
    pypool::AsyncResult<Fragile> r2 = r;
    BOOST_TEST(boom_code([&] { (void)std::move(r2).get(); }) == 203);  // get() && moves out
    BOOST_TEST(boom_code([&] { (void)std::move(r2).result(1s); }) == 203);
    BOOST_TEST(boom_code([&] { Fragile copy = r.get(); (void)copy; }) == 103);  // the caller's copy
    BOOST_TEST(r.get().v == 3);  // the stored value is intact
    BOOST_TEST(r.successful());
    Fragile::disarm();
    BOOST_TEST(std::move(r2).get().v == 3);
    // apply() returns by moving out of the result
    Fragile::move_for = 4;
    Fragile::move_skip = 1;  // the first move stores the value, the second moves it out
    BOOST_TEST(boom_code([&] { (void)pool.apply([] { return Fragile(4); }); }) == 204);
    Fragile::disarm();
    pool.close();
    pool.join();
    BOOST_TEST(pool.stats().failed == 0u);  // the task itself succeeded each time
}

BOOST_AUTO_TEST_CASE(map_of_result_whose_move_throws_fails_the_map_after_every_item_ran,
                     *boost::unit_test::timeout(60)) {
    FragileGuard guard;
    ErrorSink sink;
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 3, .on_callback_error = sink.handler()});
    std::atomic<int> ran{0};
    auto f = [&ran](int i) { ran++; return Fragile(i); };
    std::vector<int> xs{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    Fragile::move_for = 6;  // gathering the results into the vector moves each once
    BOOST_TEST(boom_code([&] { (void)pool.map(f, xs, 2); }) == 206);
    BOOST_TEST(ran.load() == 10);
    std::promise<std::exception_ptr> ecb;
    auto m = pool.map_async(f, xs, {.chunksize = 3, .error_callback = [&](std::exception_ptr e) { ecb.set_value(e); }});
    BOOST_TEST(boom_code([&] { (void)m.get(); }) == 206);
    BOOST_TEST(boom_code([&] { std::rethrow_exception(ecb.get_future().get()); }) == 206);
    Fragile::disarm();
    auto ok = pool.map(f, xs);
    BOOST_REQUIRE(ok.size() == 10u);
    BOOST_TEST(ok[9].v == 9);
    // the map's callback gets the vector by reference: no copies
    Fragile::copy_for = -2;
    std::promise<std::size_t> cb;
    auto m2 = pool.map_async(f, xs, {.callback = [&](const std::vector<Fragile>& v) { cb.set_value(v.size()); }});
    BOOST_TEST(m2.get().size() == 10u);
    BOOST_TEST(cb.get_future().get() == 10u);
    Fragile::disarm();
    pool.close();
    pool.join();
    BOOST_TEST(sink.count.load() == 0u);
    BOOST_TEST(ran.load() == 40);
}

BOOST_AUTO_TEST_CASE(imap_of_result_whose_move_throws_delivers_that_exception_at_its_position,
                     *boost::unit_test::timeout(60)) {
    FragileGuard guard;
    pypool::ThreadPool pool(2);
    std::vector<int> xs{0, 1, 2, 3, 4};
    auto f = [](int i) { return Fragile(i); };
    // Whichever of the moves on the way to the consumer throws, item 2 is delivered exactly
    // once: as that exception, or (once every move succeeded) as its value.
    for (int skip = 0; skip < 6; ++skip) {
        for (bool ordered : {true, false}) {
            Fragile::disarm();
            Fragile::move_for = 2;
            Fragile::move_skip = skip;
            auto it = ordered ? pool.imap(f, xs) : pool.imap_unordered(f, xs);
            std::multiset<int> got;
            int errors = 0;
            for (int guard_n = 0; guard_n < 100; ++guard_n) {
                try {
                    auto v = it.next();
                    if (!v) break;
                    got.insert(v->v);
                } catch (const Boom& b) {
                    BOOST_TEST(b.code == 202);
                    ++errors;
                }
            }
            Fragile::disarm();
            BOOST_TEST(errors + static_cast<int>(got.count(2)) == 1, "skip " << skip);
            BOOST_TEST(got.count(0) == 1u);
            BOOST_TEST(got.count(4) == 1u);
            BOOST_TEST(got.size() + static_cast<std::size_t>(errors) == 5u);
        }
    }
    // range-for: the throwing item ends the loop at its position; begin() goes on after it
    Fragile::move_for = 2;
    auto it = pool.imap(f, xs);
    std::vector<int> seen;
    BOOST_TEST(boom_code([&] { for (auto& v : it) seen.push_back(v.v); }) == 202);
    Fragile::disarm();
    for (auto& v : it) seen.push_back(v.v);
    BOOST_TEST(seen == (std::vector{0, 1, 3, 4}));
    pool.close();
    pool.join();
}

BOOST_AUTO_TEST_CASE(imap_item_whose_move_throws_when_next_takes_it_from_begin_is_delivered_once,
                     *boost::unit_test::timeout(60)) {
    FragileGuard guard;
    pypool::ThreadPool pool(2);
    auto it = pool.imap([](int i) { return Fragile(i); }, std::vector{0, 1, 2});
    auto b = it.begin();  // fetches item 0 into the iterator
    BOOST_TEST((*b).v == 0);
    Fragile::move_for = 0;
    BOOST_TEST(boom_code([&] { (void)it.next(); }) == 200);  // item 0's outcome
    Fragile::disarm();
    BOOST_TEST(it.next().value().v == 1);  // not item 0 again
    BOOST_TEST(it.next().value().v == 2);
    BOOST_TEST(!it.next().has_value());
    pool.close();
    pool.join();
}

// ==== terminate() from a callback, close() from a task ===========================================

BOOST_AUTO_TEST_CASE(callback_calling_terminate_cancels_queued_work_and_join_returns,
                     *boost::unit_test::timeout(60)) {
    ErrorSink sink;
    pypool::ThreadPool pool(pypool::PoolOptions{.processes = 1, .on_callback_error = sink.handler()});
    std::promise<void> go;
    auto gate = go.get_future().share();
    std::latch terminated(1);
    std::atomic<int> cancelled_seen{0}, wrong_error{0}, queued_ran{0};
    std::latch holder_started(1);
    auto first = pool.apply_async([gate] { gate.wait(); return 1; }, std::tuple{},
                                  {.callback = [&](const int&) {
                                      holder_started.wait();  // the worker is busy: the rest is queued
                                      pool.terminate();
                                      terminated.count_down();
                                  }});
    // holds the only worker until terminate() has run, so everything behind it is queued
    auto holder = pool.submit([&] {
        holder_started.count_down();
        terminated.wait();
        return 2;
    });
    std::vector<pypool::AsyncResult<int>> with_cb, plain;
    for (int i = 0; i < 20; ++i) {
        with_cb.push_back(pool.apply_async(
            [&queued_ran] { queued_ran++; return 3; }, std::tuple{},
            {.callback = [](const int&) {},
             .error_callback = [&](std::exception_ptr e) {
                 try {
                     std::rethrow_exception(e);
                 } catch (const pypool::CancelledError&) {
                     cancelled_seen++;
                 } catch (...) {
                     wrong_error++;
                 }
             }}));
        plain.push_back(pool.submit([&queued_ran] { queued_ran++; return 4; }));
    }
    go.set_value();
    BOOST_TEST(first.get() == 1);
    BOOST_TEST(holder.get() == 2);
    pool.join();
    BOOST_TEST(queued_ran.load() == 0);
    BOOST_TEST(cancelled_seen.load() == 20);
    BOOST_TEST(wrong_error.load() == 0);
    for (auto& r : with_cb) {
        BOOST_TEST(r.cancelled());
        BOOST_CHECK_THROW((void)r.get(), pypool::CancelledError);
    }
    for (auto& r : plain) BOOST_CHECK_THROW((void)r.get(), pypool::CancelledError);
    BOOST_CHECK_THROW(pool.submit([] { return 0; }), pypool::ValueError);
    BOOST_TEST(sink.count.load() == 0u);
    const auto s = pool.stats();
    BOOST_TEST(s.submitted == 42u);
    BOOST_TEST(s.completed == 2u);
    BOOST_TEST(s.cancelled == 40u);
    BOOST_TEST(s.failed == 0u);
    BOOST_TEST(s.callbacks_pending == 0u);
}

BOOST_AUTO_TEST_CASE(task_calling_close_on_its_own_pool_keeps_queued_work_and_join_returns,
                     *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(1);
    std::promise<void> go;
    auto gate = go.get_future().share();
    std::atomic<int> queued_ran{0}, follow_up_ran{0};
    auto blocker = pool.submit([gate] { gate.wait(); });
    auto closer = pool.submit([&] {
        pool.close();
        // work submitted from inside the pool is still accepted after close()
        return pool.apply_async([&follow_up_ran] { follow_up_ran++; });
    });
    std::vector<pypool::AsyncResult<void>> queued;
    for (int i = 0; i < 10; ++i) queued.push_back(pool.submit([&queued_ran] { queued_ran++; }));
    go.set_value();
    auto follow_up = closer.get();
    BOOST_CHECK_THROW(pool.submit([] {}), pypool::ValueError);  // outside: refused
    pool.join();
    BOOST_TEST(queued_ran.load() == 10);
    BOOST_TEST(follow_up_ran.load() == 1);
    BOOST_CHECK_NO_THROW(follow_up.get());
    for (auto& q : queued) BOOST_CHECK_NO_THROW(q.get());
    const auto s = pool.stats();
    BOOST_TEST(s.submitted == 13u);
    BOOST_TEST(s.completed == 13u);
}

// ==== stats: found by the bulk stress mix ========================================================

BOOST_AUTO_TEST_CASE(map_of_an_empty_input_counts_no_task_in_the_stats, *boost::unit_test::timeout(60)) {
    pypool::ThreadPool pool(2);
    BOOST_TEST(pool.map([](int i) { return i; }, std::vector<int>{}).empty());
    std::promise<std::size_t> cb;
    auto m = pool.map_async([](int i) { return i; }, std::vector<int>{},
                            {.callback = [&](const std::vector<int>& v) { cb.set_value(v.size()); }});
    BOOST_TEST(m.get().empty());
    BOOST_TEST(cb.get_future().get() == 0u);
    pool.close();
    pool.join();
    const auto s = pool.stats();
    BOOST_TEST(s.submitted == 0u);
    BOOST_TEST(s.completed == 0u);
    BOOST_TEST(s.completed + s.failed + s.cancelled == s.submitted);
}
