#pragma once
/// @file
/// pypool::Function<Sig>: a move-only callable wrapper with a non-const call operator.

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace pypool {

template <class Sig>
class Function;

namespace detail {
template <class T>
struct is_function_specialization : std::false_type {};
template <class S>
struct is_function_specialization<Function<S>> : std::true_type {};

template <class F>
bool is_null_callable(const F& f) noexcept {
    if constexpr (std::is_function_v<F>) {
        return false;  // a function (reference) is never null
    } else if constexpr (std::is_pointer_v<F> || std::is_member_pointer_v<F>) {
        return f == nullptr;
    } else if constexpr (requires(const F& g) { g == nullptr; }) {
        return f == nullptr;  // std::function and friends
    } else {
        return false;
    }
}

/// A function pointer or an object with one, non-template operator() (a lambda that is
/// not generic): a callable whose signature is fixed, so a mismatch is a mistake.
template <class F>
concept fixed_signature_callable =
    (std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>) ||
    requires { &F::operator(); };

template <class F>
inline constexpr bool always_false_v = false;
}  // namespace detail

/// A move-only function wrapper (like C++23 std::move_only_function, with a non-const call
/// so mutable lambdas work). Small callables are stored inline, larger ones on the heap.
template <class R, class... Args>
class Function<R(Args...)> {
    static constexpr std::size_t buffer_size = 3 * sizeof(void*);
    struct VTable {
        R (*invoke)(void*, Args&&...);
        void (*move)(void* dst, void* src) noexcept;  // move-construct dst from src, destroy src
        void (*destroy)(void*) noexcept;
    };

    template <class F>
    static constexpr bool stored_inline = sizeof(F) <= buffer_size &&
                                          alignof(F) <= alignof(void*) &&
                                          std::is_nothrow_move_constructible_v<F>;

    template <class F>
    static constexpr VTable inline_vtable{
        [](void* p, Args&&... args) -> R {
            if constexpr (std::is_void_v<R>)
                std::invoke(*static_cast<F*>(p), std::forward<Args>(args)...);  // result discarded
            else
                return std::invoke(*static_cast<F*>(p), std::forward<Args>(args)...);
        },
        [](void* dst, void* src) noexcept {
            ::new (dst) F(std::move(*static_cast<F*>(src)));
            static_cast<F*>(src)->~F();
        },
        [](void* p) noexcept { static_cast<F*>(p)->~F(); }};

    template <class F>
    static constexpr VTable heap_vtable{
        [](void* p, Args&&... args) -> R {
            if constexpr (std::is_void_v<R>)
                std::invoke(**static_cast<F**>(p), std::forward<Args>(args)...);
            else
                return std::invoke(**static_cast<F**>(p), std::forward<Args>(args)...);
        },
        [](void* dst, void* src) noexcept {
            *static_cast<F**>(dst) = *static_cast<F**>(src);
        },
        [](void* p) noexcept { delete *static_cast<F**>(p); }};

public:
    /// An empty function (no callback).
    Function() noexcept = default;
    /// An empty function (no callback).
    Function(std::nullptr_t) noexcept {}

    /// Wraps any callable invocable as R(Args...); a null function pointer or an empty
    /// std::function gives an empty Function. Throws what moving f or allocating throws.
    template <class F>
        requires(!std::is_same_v<std::remove_cvref_t<F>, Function> &&
                 std::is_invocable_r_v<R, std::decay_t<F>&, Args...>)
    Function(F&& f) {  // NOLINT(google-explicit-constructor): implicit, like std::function
        using D = std::decay_t<F>;
        if constexpr (detail::is_function_specialization<D>::value) {
            if (!f) return;
        } else if (detail::is_null_callable(f)) {
            return;
        }
        if constexpr (stored_inline<D>) {
            ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
            vt_ = &inline_vtable<D>;
        } else {
            *reinterpret_cast<D**>(buf_) = new D(std::forward<F>(f));
            vt_ = &heap_vtable<D>;
        }
    }

    /// Refuses, with a static_assert naming the signature it needs, a callable whose fixed
    /// signature does not fit (e.g. a Python-style error_callback taking const std::exception&);
    /// without it the error would read "cannot convert brace-enclosed initializer list".
    template <class F>
        requires(!std::is_same_v<std::remove_cvref_t<F>, Function> &&
                 !std::is_invocable_r_v<R, std::decay_t<F>&, Args...> &&
                 detail::fixed_signature_callable<std::decay_t<F>>)
    Function(F&&) {  // NOLINT(google-explicit-constructor)
        if constexpr (std::is_same_v<void(Args...), void(std::exception_ptr)>) {
            static_assert(detail::always_false_v<F>,
                          "pypool: error_callback (and on_callback_error) must be callable as "
                          "void(std::exception_ptr): write [](std::exception_ptr e) { ... } and "
                          "use pypool::what(e) for the message (Python's str(e)), or "
                          "std::rethrow_exception(e) to catch it by type");
        } else if constexpr (sizeof...(Args) == 0) {
            static_assert(detail::always_false_v<F>,
                          "pypool: this callback must be callable as void() (Callbacks<void>::"
                          "callback: the task returns nothing): take no parameter");
        } else {
            static_assert(detail::always_false_v<F>,
                          "pypool: this callback cannot be called with what it receives: "
                          "Callbacks<R>::callback is called as void(const R&) with the task's "
                          "result, MapOptions<Item>::callback as void(const std::vector<Item>&) "
                          "with all results");
        }
    }

    /// Moves other's callable in; other becomes empty. Never throws.
    Function(Function&& other) noexcept : vt_(other.vt_) {
        if (vt_) {
            vt_->move(buf_, other.buf_);
            other.vt_ = nullptr;
        }
    }
    /// Replaces the callable with other's; other becomes empty. Never throws.
    Function& operator=(Function&& other) noexcept {
        if (this != &other) {
            reset();
            if (other.vt_) {
                other.vt_->move(buf_, other.buf_);
                vt_ = other.vt_;
                other.vt_ = nullptr;
            }
        }
        return *this;
    }
    /// Empties the function.
    Function& operator=(std::nullptr_t) noexcept {
        reset();
        return *this;
    }
    Function(const Function&) = delete;
    Function& operator=(const Function&) = delete;
    /// Destroys the stored callable.
    ~Function() { reset(); }

    /// True if a callable is stored. Never throws.
    explicit operator bool() const noexcept { return vt_ != nullptr; }

    /// Calls the stored callable; throws what it throws (std::bad_function_call if empty).
    R operator()(Args... args) {
        if (!vt_) throw std::bad_function_call();
        return vt_->invoke(buf_, std::forward<Args>(args)...);
    }

    /// Destroys the stored callable, leaving the function empty. Never throws.
    void reset() noexcept {
        if (vt_) {
            vt_->destroy(buf_);
            vt_ = nullptr;
        }
    }

private:
    const VTable* vt_ = nullptr;
    alignas(void*) unsigned char buf_[buffer_size];
};

}  // namespace pypool
