// pypool::Function<Sig>: the move-only callable wrapper used for callbacks.
#include <boost/test/unit_test.hpp>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <pypool/function.hpp>

using pypool::Function;

namespace {
int twice(int x) { return 2 * x; }
int calls_of_free_function = 0;
void count_call() { ++calls_of_free_function; }

struct CountingFunctor {
    int* destroyed;
    explicit CountingFunctor(int* d) : destroyed(d) {}
    CountingFunctor(CountingFunctor&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)) {}
    CountingFunctor(const CountingFunctor&) = delete;
    ~CountingFunctor() {
        if (destroyed) ++*destroyed;
    }
    int operator()(int x) const { return x + 1; }
};
}  // namespace

BOOST_AUTO_TEST_CASE(is_move_only_and_not_copyable) {
    static_assert(!std::is_copy_constructible_v<Function<void()>>);
    static_assert(!std::is_copy_assignable_v<Function<void()>>);
    static_assert(std::is_nothrow_move_constructible_v<Function<void()>>);
    static_assert(std::is_nothrow_move_assignable_v<Function<void()>>);
    BOOST_TEST(true);
}

BOOST_AUTO_TEST_CASE(operator_bool_is_explicit) {
    static_assert(std::is_constructible_v<bool, Function<void()>>);
    static_assert(!std::is_convertible_v<Function<void()>, bool>);
    BOOST_TEST(true);
}

BOOST_AUTO_TEST_CASE(default_constructed_is_empty) {
    Function<void()> f;
    BOOST_TEST(!f);
}

BOOST_AUTO_TEST_CASE(empty_from_nullptr) {
    Function<int(int)> f = nullptr;
    BOOST_TEST(!f);
}

BOOST_AUTO_TEST_CASE(empty_from_null_function_pointer) {
    int (*p)(int) = nullptr;
    Function<int(int)> f = p;
    BOOST_TEST(!f);
}

BOOST_AUTO_TEST_CASE(empty_from_empty_std_function) {
    std::function<int(int)> sf;
    Function<int(int)> f = sf;
    BOOST_TEST(!f);
    Function<int(int)> g = std::move(sf);
    BOOST_TEST(!g);
}

BOOST_AUTO_TEST_CASE(empty_from_empty_function_of_other_signature) {
    Function<int(int)> inner;
    Function<long(int)> outer = std::move(inner);
    BOOST_TEST(!outer);
}

BOOST_AUTO_TEST_CASE(calling_an_empty_function_throws_bad_function_call) {
    Function<void()> f;
    BOOST_CHECK_THROW(f(), std::bad_function_call);
}

BOOST_AUTO_TEST_CASE(wraps_function_pointer_and_function_name) {
    Function<int(int)> f = &twice;
    BOOST_TEST(static_cast<bool>(f));
    BOOST_TEST(f(21) == 42);
    Function<int(int)> g = twice;  // a function name decays to a pointer
    BOOST_TEST(g(4) == 8);
    Function<void()> h = count_call;
    h();
    h();
    BOOST_TEST(calls_of_free_function == 2);
}

BOOST_AUTO_TEST_CASE(wraps_non_empty_std_function) {
    std::function<int(int)> sf = [](int x) { return x - 1; };
    Function<int(int)> f = sf;
    BOOST_TEST(static_cast<bool>(f));
    BOOST_TEST(f(10) == 9);
}

BOOST_AUTO_TEST_CASE(mutable_lambda_keeps_state_between_calls) {
    Function<int()> counter = [n = 0]() mutable { return ++n; };
    BOOST_TEST(counter() == 1);
    BOOST_TEST(counter() == 2);
    BOOST_TEST(counter() == 3);
}

BOOST_AUTO_TEST_CASE(move_only_capture_is_accepted) {
    auto p = std::make_unique<int>(7);
    Function<int()> f = [p = std::move(p)] { return *p; };
    BOOST_TEST(f() == 7);
}

BOOST_AUTO_TEST_CASE(move_only_argument_is_forwarded) {
    Function<int(std::unique_ptr<int>)> f = [](std::unique_ptr<int> p) { return *p * 3; };
    BOOST_TEST(f(std::make_unique<int>(5)) == 15);
}

BOOST_AUTO_TEST_CASE(reference_argument_is_not_copied) {
    Function<void(std::string&)> f = [](std::string& s) { s += "!"; };
    std::string s = "hi";
    f(s);
    BOOST_TEST(s == "hi!");
}

BOOST_AUTO_TEST_CASE(move_construction_transfers_the_callable_and_empties_source) {
    int destroyed = 0;
    {
        Function<int(int)> a = CountingFunctor(&destroyed);
        Function<int(int)> b = std::move(a);
        BOOST_TEST(!a);  // NOLINT(bugprone-use-after-move): documented to be empty
        BOOST_TEST(static_cast<bool>(b));
        BOOST_TEST(b(1) == 2);
        BOOST_TEST(destroyed == 0);
    }
    BOOST_TEST(destroyed == 1);
}

BOOST_AUTO_TEST_CASE(move_assignment_destroys_previous_callable) {
    int destroyed_a = 0;
    int destroyed_b = 0;
    Function<int(int)> a = CountingFunctor(&destroyed_a);
    Function<int(int)> b = CountingFunctor(&destroyed_b);
    b = std::move(a);
    BOOST_TEST(destroyed_b == 1);
    BOOST_TEST(destroyed_a == 0);
    BOOST_TEST(!a);  // NOLINT(bugprone-use-after-move)
    BOOST_TEST(b(4) == 5);
    b = nullptr;
    BOOST_TEST(!b);
    BOOST_TEST(destroyed_a == 1);
}

BOOST_AUTO_TEST_CASE(self_move_assignment_keeps_the_callable) {
    Function<int()> f = [] { return 9; };
    auto& alias = f;
    f = std::move(alias);
    BOOST_TEST(static_cast<bool>(f));
    BOOST_TEST(f() == 9);
}

BOOST_AUTO_TEST_CASE(reset_destroys_the_callable) {
    int destroyed = 0;
    Function<int(int)> f = CountingFunctor(&destroyed);
    f.reset();
    BOOST_TEST(!f);
    BOOST_TEST(destroyed == 1);
    f.reset();  // resetting an empty function is harmless
    BOOST_TEST(destroyed == 1);
}

BOOST_AUTO_TEST_CASE(large_callable_lives_on_the_heap_and_survives_moves) {
    std::array<long, 64> big{};
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<long>(i);
    auto token = std::make_shared<int>(0);
    std::weak_ptr<int> watch = token;
    Function<long()> f = [big, token = std::move(token)] {
        long s = 0;
        for (long v : big) s += v;
        return s;
    };
    static_assert(sizeof(big) > 3 * sizeof(void*));
    Function<long()> g = std::move(f);
    Function<long()> h;
    h = std::move(g);
    BOOST_TEST(h() == 63 * 64 / 2);
    BOOST_TEST(!watch.expired());
    h.reset();
    BOOST_TEST(watch.expired());  // the heap copy was freed exactly once (ASan checks "once")
}

BOOST_AUTO_TEST_CASE(large_callable_destroyed_with_the_function) {
    auto token = std::make_shared<int>(0);
    std::weak_ptr<int> watch = token;
    {
        std::array<char, 256> pad{};
        Function<void()> f = [pad, token = std::move(token)] { (void)pad; };
        BOOST_TEST(!watch.expired());
    }
    BOOST_TEST(watch.expired());
}

BOOST_AUTO_TEST_CASE(throwing_callable_propagates_the_exception) {
    Function<void()> f = [] { throw std::string("boom"); };
    BOOST_CHECK_THROW(f(), std::string);
    BOOST_TEST(static_cast<bool>(f));  // still callable after throwing
}

BOOST_AUTO_TEST_CASE(result_convertible_to_return_type_is_accepted) {
    Function<long(int)> f = [](int x) { return x * 2; };  // int converts to long
    BOOST_TEST(f(8) == 16L);
    Function<void(int)> g = [](int x) { return x; };  // result discarded
    g(1);
}
