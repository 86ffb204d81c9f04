#pragma once
// Internal: how a call crosses the process boundary of a ProcessPool.
//
// A task travels as (entry, fn, bytes): `entry` is remote_entry<F, Args...> (a plain
// function instantiated per callable and argument types), `fn` the function pointer for a
// function-pointer callable (nullptr for a capture-less lambda, which the entry
// default-constructs), `bytes` the cereal encoding of the decayed argument tuple. The
// parent names both code addresses as (module, offset, build-id) (src/process/), the
// worker resolves them in its own address space, calls entry, and sends back the reply
// bytes it wrote: one status byte, then the cereal encoding of the result, or the
// exception (see encode_current_exception).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <istream>
#include <optional>
#include <ostream>
#include <streambuf>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/deque.hpp>
#include <cereal/types/list.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/unordered_set.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include <pypool/detail/task.hpp>
#include <pypool/map.hpp>

namespace pypool {

/// cereal support for pypool::None (a map over a void function yields it): nothing to store.
template <class Archive>
void serialize(Archive&, None&) {}

namespace detail {

/// The worker-side entry of one (callable, argument types): decodes the arguments from
/// [data, data + size), calls the function, appends the reply to out. Never throws.
using RemoteEntry = void (*)(const void* fn, const char* data, std::size_t size,
                             std::string& out) noexcept;

/// Status byte that starts every reply.
enum : char {
    reply_value = 0,          // the encoded result follows
    reply_exception = 1,      // an encoded exception follows (encode_current_exception)
    reply_serialization = 2,  // the worker could not decode/encode: message follows
};

// ---- out of line (src/process/) -----------------------------------------------------------

/// On a worker thread of a ProcessPool: sends the call to that thread's worker process and
/// returns the reply bytes. Throws BrokenProcessPool (the worker died), TimeoutError
/// (task_timeout passed; the worker was killed), CancelledError (terminate() killed it).
std::string process_call(RemoteEntry entry, const void* fn, std::string&& args);
/// In a worker: appends the current exception (type, what()) to out. Never throws.
void encode_current_exception(std::string& out) noexcept;
/// In the parent: throws the exception a reply_exception reply describes.
[[noreturn]] void throw_remote_exception(const char* data, std::size_t size);
/// Throws SerializationError(what + ": " + the current exception's message).
[[noreturn]] void throw_serialization_error(const char* what, const std::type_info& type);
/// Throws SerializationError with the message a reply_serialization reply carries.
[[noreturn]] void throw_worker_serialization_error(const char* data, std::size_t size);
/// Demangled name of a type.
std::string demangle(const char* mangled);
/// register_exception<E>(): types named by demangled name come back as themselves.
void register_exception_factory(const std::type_info& type,
                                std::exception_ptr (*make)(const std::string& what));

// ---- byte streams over memory --------------------------------------------------------------

/// A read-only streambuf over a byte range (no copy).
class InBuf final : public std::streambuf {
public:
    InBuf(const char* data, std::size_t size) {
        char* p = const_cast<char*>(data);
        setg(p, p, p + size);
    }

protected:
    std::streamsize xsgetn(char* s, std::streamsize n) override {
        const std::streamsize left = egptr() - gptr();
        if (n > left) n = left;
        if (n > 0) {
            traits_type::copy(s, gptr(), static_cast<std::size_t>(n));
            gbump(static_cast<int>(n));
        }
        return n;
    }
};

/// A streambuf appending to a std::string.
class OutBuf final : public std::streambuf {
public:
    explicit OutBuf(std::string& s) : s_(s) {}

protected:
    std::streamsize xsputn(const char* p, std::streamsize n) override {
        s_.append(p, static_cast<std::size_t>(n));
        return n;
    }
    int_type overflow(int_type c) override {
        if (!traits_type::eq_int_type(c, traits_type::eof())) s_.push_back(traits_type::to_char_type(c));
        return traits_type::not_eof(c);
    }

private:
    std::string& s_;
};

/// Appends the cereal binary encoding of values to out.
template <class... T>
void encode_to(std::string& out, const T&... values) {
    OutBuf buf(out);
    std::ostream os(&buf);
    cereal::BinaryOutputArchive ar(os);
    ar(values...);
}

/// Decodes values from [data, data + size); throws cereal's exception on bad input.
template <class... T>
void decode_from(const char* data, std::size_t size, T&... values) {
    InBuf buf(data, size);
    std::istream is(&buf);
    cereal::BinaryInputArchive ar(is);
    ar(values...);
}

// ---- compile-time checks --------------------------------------------------------------------

template <class T>
inline constexpr bool serializable_v =
    std::is_same_v<T, None> ||
    (cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value &&
     cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value);

/// Instantiated for every argument and result type: the compiler's "in instantiation of
/// check_serializable<T>" line names the type.
template <class T>
struct check_serializable {
    static_assert(serializable_v<T>,
                  "pypool::ProcessPool: this argument or result type cannot be serialized by "
                  "cereal (see the type in 'check_serializable<T>' above): give it a "
                  "serialize(Archive&) member or free function, or include the cereal header "
                  "for it");
    static_assert(std::is_default_constructible_v<T>,
                  "pypool::ProcessPool: argument and result types must be default-constructible "
                  "(they are decoded into a default-constructed object)");
    static constexpr bool value = true;
};
template <>
struct check_serializable<void> {
    static constexpr bool value = true;
};

template <class P>
inline constexpr bool mutable_ref_v =
    std::is_lvalue_reference_v<P> && !std::is_const_v<std::remove_reference_t<P>>;

template <class Sig>
struct params_ok : std::true_type {};
template <class R, class... P>
struct params_ok<R(P...)> : std::bool_constant<!(mutable_ref_v<P> || ...)> {};
template <class R, class... P>
struct params_ok<R(P...) noexcept> : params_ok<R(P...)> {};
template <class C, class R, class... P>
struct params_ok<R (C::*)(P...) const> : params_ok<R(P...)> {};
template <class C, class R, class... P>
struct params_ok<R (C::*)(P...) const noexcept> : params_ok<R(P...)> {};
template <class C, class R, class... P>
struct params_ok<R (C::*)(P...)> : params_ok<R(P...)> {};
template <class C, class R, class... P>
struct params_ok<R (C::*)(P...) noexcept> : params_ok<R(P...)> {};

template <class F>
constexpr bool callable_params_ok() {
    if constexpr (std::is_pointer_v<F>)
        return params_ok<std::remove_pointer_t<F>>::value;
    else if constexpr (requires { &F::operator(); })
        return params_ok<decltype(&F::operator())>::value;
    else
        return true;  // a generic lambda: checked at the call (it must take the rvalue)
}

template <class F>
inline constexpr bool remote_callable_v =
    (std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>) ||
    (std::is_class_v<F> && std::is_empty_v<F> && std::is_default_constructible_v<F> &&
     std::is_trivially_copyable_v<F>);

/// The checks every ProcessPool member makes on its callable.
template <class F>
constexpr bool check_remote_callable() {
    static_assert(remote_callable_v<F>,
                  "pypool::ProcessPool runs the callable in another process, so it must be a "
                  "function pointer or a lambda without captures: pass state as arguments "
                  "(they are copied through cereal)");
    static_assert(callable_params_ok<F>(),
                  "pypool::ProcessPool: a parameter is a non-const reference; the task runs on "
                  "a copy in another process, so take it by value or const reference and "
                  "return what changed");
    return true;
}

/// The result type a ProcessPool member names for f(args...): apply_result_t when the call
/// is valid; for a function taking a non-const reference, what it returns (so that the
/// member's static_assert explains the error instead of "no matching function").
struct not_invocable {};
template <class F, class... Args>
auto process_result_probe() {
    using Fd = std::decay_t<F>;
    if constexpr (std::is_invocable_v<Fd, std::decay_t<Args>...>)
        return std::type_identity<std::decay_t<std::invoke_result_t<Fd, std::decay_t<Args>...>>>{};
    else if constexpr (std::is_invocable_v<Fd, std::decay_t<Args>&...>)
        return std::type_identity<std::decay_t<std::invoke_result_t<Fd, std::decay_t<Args>&...>>>{};
    else
        return std::type_identity<not_invocable>{};
}
template <class F, class... Args>
using process_result_t = typename decltype(process_result_probe<F, Args...>())::type;

/// The decayed result of F called with rvalues of A.
template <class F, class... A>
using remote_result_t = std::decay_t<std::invoke_result_t<F&, A...>>;

/// In the worker: the callable itself (a function pointer resolved here, or a
/// default-constructed capture-less lambda).
template <class F>
F local_callable([[maybe_unused]] const void* fn) noexcept {
    if constexpr (std::is_pointer_v<F>)
        return reinterpret_cast<F>(const_cast<void*>(fn));
    else
        return F{};
}

/// Worker side: decode (Args...), call F, encode the result or the exception.
template <class F, class... Args>
void remote_entry(const void* fn, const char* data, std::size_t size, std::string& out) noexcept {
    using R = remote_result_t<F, Args...>;
    std::tuple<Args...> args;
    try {
        if constexpr (sizeof...(Args) > 0)
            std::apply([&](auto&... v) { decode_from(data, size, v...); }, args);
    } catch (...) {
        out.push_back(reply_serialization);
        try {
            try {
                throw;
            } catch (const std::exception& e) {
                out += "cannot decode the arguments in the worker: ";
                out += e.what();
            } catch (...) {
                out += "cannot decode the arguments in the worker";
            }
        } catch (...) {
        }
        return;
    }
    F f = local_callable<F>(fn);
    const std::size_t start = out.size();
    try {
        if constexpr (std::is_void_v<R>) {
            std::apply(f, std::move(args));
            out.push_back(reply_value);
        } else {
            R r = std::apply(f, std::move(args));
            out.push_back(reply_value);
            try {
                encode_to(out, r);
            } catch (...) {
                out.resize(start);
                out.push_back(reply_serialization);
                try {
                    throw;
                } catch (const std::exception& e) {
                    out += "cannot encode the result in the worker: ";
                    out += e.what();
                } catch (...) {
                    out += "cannot encode the result in the worker";
                }
            }
        }
    } catch (...) {
        out.resize(start);
        out.push_back(reply_exception);
        encode_current_exception(out);
    }
}

/// The decayed result of one item of a map (Star: std::apply over the tuple-like D).
template <class F, bool Star, class D>
auto batch_result_probe() {
    if constexpr (Star)
        return std::type_identity<std::decay_t<decltype(std::apply(std::declval<F&>(), std::declval<D&&>()))>>{};
    else
        return std::type_identity<remote_result_t<F, D>>{};
}
template <class F, bool Star, class D>
using batch_result_t = typename decltype(batch_result_probe<F, Star, D>())::type;

/// Appends the message of the current exception (if any) to out.
inline void append_current_what(std::string& out) noexcept {
    try {
        try {
            throw;
        } catch (const std::exception& e) {
            out += ": ";
            out += e.what();
        } catch (...) {
        }
    } catch (...) {
    }
}

template <class T>
using raw_t = std::conditional_t<std::is_void_v<T>, char, T>;
/// Chunks of arithmetic items with arithmetic (or no) results travel as plain arrays.
template <class D, class R>
inline constexpr bool raw_batch_v =
    std::is_arithmetic_v<D> && (std::is_void_v<R> || std::is_arithmetic_v<R>);

/// Worker side of a map chunk: u64 count, then count items of D; replies with, per item, a
/// status byte and the encoded result or exception (one cereal stream each way).
template <class F, bool Star, class D>
void remote_batch_entry(const void* fn, const char* data, std::size_t size, std::string& out) noexcept {
    using R = batch_result_t<F, Star, D>;
    F f = local_callable<F>(fn);
    const std::size_t start = out.size();
    if constexpr (raw_batch_v<D, R>) {
        // Arithmetic items and results: plain arrays, no per-item stream calls.
        std::uint64_t n = 0;
        if (size < 8 || (std::memcpy(&n, data, 8), (size - 8) / sizeof(D) < n)) {
            out.push_back(reply_serialization);
            out += "cannot decode the arguments in the worker: truncated message";
            return;
        }
        const char* in = data + 8;
        constexpr std::size_t rsize = std::is_void_v<R> ? 0 : sizeof(raw_t<R>);
        try {
            out.push_back(reply_value);
            const std::size_t st0 = out.size();
            out.resize(st0 + n + n * rsize);
            std::string ex;
            std::uint64_t failed = 0;
            for (std::uint64_t k = 0; k < n; ++k) {
                D d;
                std::memcpy(&d, in + k * sizeof(D), sizeof(D));
                try {
                    if constexpr (std::is_void_v<R>) {
                        f(d);
                    } else {
                        const R r = f(d);
                        std::memcpy(out.data() + st0 + n + k * rsize, &r, rsize);
                    }
                    out[st0 + k] = 0;
                } catch (...) {
                    out[st0 + k] = 1;
                    ++failed;
                    const std::size_t at = ex.size();
                    ex.append(4, '\0');
                    encode_current_exception(ex);
                    const auto len = static_cast<std::uint32_t>(ex.size() - at - 4);
                    std::memcpy(ex.data() + at, &len, 4);
                }
            }
            out += ex;
        } catch (...) {
            out.resize(start);
            out.push_back(reply_serialization);
            out += "cannot encode the results in the worker (out of memory)";
        }
        return;
    }
    const char* stage = "cannot decode the arguments in the worker";
    try {
        InBuf ib(data, size);
        std::istream is(&ib);
        cereal::BinaryInputArchive in(is);
        std::uint64_t n = 0;
        in(n);
        out.push_back(reply_value);
        OutBuf ob(out);
        std::ostream os(&ob);
        cereal::BinaryOutputArchive o(os);
        std::string ex;
        for (std::uint64_t k = 0; k < n; ++k) {
            stage = "cannot decode the arguments in the worker";
            D d{};
            in(d);
            stage = "cannot encode a result in the worker";
            // Only the call's own exception is the item's outcome; one thrown while encoding
            // (cereal's or the type's save) reaches the outer catch: the chunk (one task)
            // then fails with SerializationError.
            bool threw = false;
            std::optional<raw_t<R>> r;
            try {
                if constexpr (std::is_void_v<R>) {
                    if constexpr (Star)
                        std::apply(f, std::move(d));
                    else
                        f(std::move(d));
                } else {
                    if constexpr (Star)
                        r.emplace(std::apply(f, std::move(d)));
                    else
                        r.emplace(f(std::move(d)));
                }
            } catch (...) {
                threw = true;
                ex.clear();
                encode_current_exception(ex);
            }
            if (threw) {
                o(std::uint8_t{1}, ex);
            } else if constexpr (std::is_void_v<R>) {
                o(std::uint8_t{0});
            } else {
                o(std::uint8_t{0}, *r);
            }
        }
    } catch (...) {
        try {
            out.resize(start);
            out.push_back(reply_serialization);
            out += stage;
            append_current_what(out);
        } catch (...) {
        }
    }
}

/// The callable a ProcessPool hands to the shared core: called on a worker thread (the
/// proxy of one worker process), it ships the call to that process and returns its result.
template <class F>
struct RemoteFn {
    F f;

    /// Tells the map/imap chunk runners to ship a chunk as one message (run_batch).
    static constexpr bool pypool_batch = true;

    /// Runs items [0, n) of a chunk in the worker process as one message: get(k) is item k's
    /// argument, store(k, item) keeps a result, fail(k, e) an item's exception. Returns 0 if
    /// every item succeeded, 1 if some failed, 2 if terminate() killed the chunk.
    template <bool Star, class Item, class Get, class Store, class Fail>
    int run_batch(std::size_t n, Get&& get, Store&& store, Fail&& fail) const noexcept {
        using D = std::decay_t<decltype(get(std::size_t{0}))>;
        using R = batch_result_t<F, Star, D>;
        static_assert(check_serializable<D>::value);
        static_assert(check_serializable<R>::value);
        auto fail_from = [&](std::size_t k0) {
            const std::exception_ptr e = std::current_exception();
            for (std::size_t k = k0; k < n; ++k) fail(k, e);
            return 1;
        };
        auto fail_serialization = [&](std::size_t k0, const char* what, const std::type_info& t) {
            try {
                throw_serialization_error(what, t);
            } catch (...) {
                return fail_from(k0);
            }
        };
        if constexpr (raw_batch_v<D, R>) {
            return run_raw_batch<Star, Item, D, R>(n, get, store, fail);
        }
        std::string args;
        try {
            OutBuf ob(args);
            std::ostream os(&ob);
            cereal::BinaryOutputArchive ar(os);
            ar(static_cast<std::uint64_t>(n));
            for (std::size_t k = 0; k < n; ++k) {
                const D& d = get(k);
                ar(d);
            }
        } catch (...) {
            return fail_serialization(0, "cannot encode the arguments", typeid(D));
        }
        const void* fn = nullptr;
        if constexpr (std::is_pointer_v<F>) fn = reinterpret_cast<const void*>(f);
        std::string reply;
        try {
            reply = process_call(&remote_batch_entry<F, Star, D>, fn, std::move(args));
        } catch (const RunCancelled&) {
            fail_from(0);
            return 2;
        } catch (...) {
            return fail_from(0);
        }
        if (reply.empty() || reply[0] != reply_value) {
            try {
                throw_worker_serialization_error(reply.empty() ? nullptr : reply.data() + 1,
                                                 reply.empty() ? 0 : reply.size() - 1);
            } catch (...) {
                return fail_from(0);
            }
        }
        int status = 0;
        std::size_t k = 0;
        try {
            InBuf ib(reply.data() + 1, reply.size() - 1);
            std::istream is(&ib);
            cereal::BinaryInputArchive in(is);
            std::string ex;
            for (; k < n; ++k) {
                std::uint8_t st = 0;
                in(st);
                if (st == 0) {
                    if constexpr (std::is_void_v<R>) {
                        try {
                            store(k, Item{});
                        } catch (...) {
                            fail(k, std::current_exception());
                            status = 1;
                        }
                    } else {
                        R r{};
                        in(r);
                        try {
                            store(k, std::move(r));
                        } catch (...) {
                            fail(k, std::current_exception());
                            status = 1;
                        }
                    }
                } else {
                    in(ex);
                    try {
                        throw_remote_exception(ex.data(), ex.size());
                    } catch (...) {
                        fail(k, std::current_exception());
                        status = 1;
                    }
                }
            }
        } catch (...) {
            return fail_serialization(k, "cannot decode a result", typeid(R));
        }
        return status;
    }

    template <bool Star, class Item, class D, class R, class Get, class Store, class Fail>
    int run_raw_batch(std::size_t n, Get& get, Store& store, Fail& fail) const noexcept {
        auto fail_from = [&](std::size_t k0) {
            const std::exception_ptr e = std::current_exception();
            for (std::size_t k = k0; k < n; ++k) fail(k, e);
            return 1;
        };
        const void* fn = nullptr;
        if constexpr (std::is_pointer_v<F>) fn = reinterpret_cast<const void*>(f);
        std::string reply;
        try {
            std::string args(8 + n * sizeof(D), '\0');
            const std::uint64_t n64 = n;
            std::memcpy(args.data(), &n64, 8);
            for (std::size_t k = 0; k < n; ++k) {
                const D d = get(k);
                std::memcpy(args.data() + 8 + k * sizeof(D), &d, sizeof(D));
            }
            reply = process_call(&remote_batch_entry<F, Star, D>, fn, std::move(args));
        } catch (const RunCancelled&) {
            fail_from(0);
            return 2;
        } catch (...) {
            return fail_from(0);
        }
        constexpr std::size_t rsize = std::is_void_v<R> ? 0 : sizeof(raw_t<R>);
        if (reply.empty() || reply[0] != reply_value || reply.size() < 1 + n + n * rsize) {
            try {
                throw_worker_serialization_error(reply.empty() ? nullptr : reply.data() + 1,
                                                 reply.empty() ? 0 : reply.size() - 1);
            } catch (...) {
                return fail_from(0);
            }
        }
        const char* st = reply.data() + 1;
        const char* vals = st + n;
        const char* ex = vals + n * rsize;
        const char* end = reply.data() + reply.size();
        int status = 0;
        for (std::size_t k = 0; k < n; ++k) {
            try {
                if (st[k] == 0) {
                    if constexpr (std::is_void_v<R>) {
                        store(k, Item{});
                    } else {
                        R r;
                        std::memcpy(&r, vals + k * rsize, rsize);
                        store(k, std::move(r));
                    }
                    continue;
                }
                std::uint32_t len = 0;
                if (end - ex < 4) throw_worker_serialization_error(nullptr, 0);
                std::memcpy(&len, ex, 4);
                ex += 4;
                if (static_cast<std::size_t>(end - ex) < len) throw_worker_serialization_error(nullptr, 0);
                const char* e = ex;
                ex += len;
                throw_remote_exception(e, len);
            } catch (...) {
                fail(k, std::current_exception());
                status = 1;
            }
        }
        return status;
    }

    template <class... A>
    auto operator()(A&&... a) const -> remote_result_t<F, std::decay_t<A>...> {
        using R = remote_result_t<F, std::decay_t<A>...>;
        static_assert((check_serializable<std::decay_t<A>>::value && ...));
        static_assert(check_serializable<R>::value);
        std::string args;
        try {
            if constexpr (sizeof...(A) > 0) encode_to(args, a...);
        } catch (...) {
            throw_serialization_error("cannot encode the arguments", typeid(std::tuple<std::decay_t<A>...>));
        }
        const void* fn = nullptr;
        if constexpr (std::is_pointer_v<F>) fn = reinterpret_cast<const void*>(f);
        const std::string reply =
            process_call(&remote_entry<F, std::decay_t<A>...>, fn, std::move(args));
        const char* p = reply.data() + 1;
        const std::size_t n = reply.size() - 1;
        switch (reply.empty() ? static_cast<char>(reply_serialization) : reply[0]) {
            case reply_value:
                break;
            case reply_exception:
                throw_remote_exception(p, n);
            default:
                throw_serialization_error(std::string(p, n).c_str(), typeid(R));
        }
        if constexpr (!std::is_void_v<R>) {
            R r{};
            try {
                decode_from(p, n, r);
            } catch (...) {
                throw_serialization_error("cannot decode the result", typeid(R));
            }
            return r;
        }
    }
};

}  // namespace detail
}  // namespace pypool
