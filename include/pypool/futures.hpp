#pragma once
/// @file
/// concurrent.futures' module functions over AsyncResult handles: pypool::wait (with
/// ReturnWhen and WaitResult) and pypool::as_completed (an input range, AsCompleted).

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <pypool/detail/concepts.hpp>
#include <pypool/detail/deadline.hpp>
#include <pypool/detail/multi_wait.hpp>
#include <pypool/detail/pointer_set.hpp>
#include <pypool/errors.hpp>
#include <pypool/result.hpp>

namespace pypool {

/// When pypool::wait returns (Python's FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class ReturnWhen {
    FirstCompleted,  ///< as soon as any result is done (or cancelled)
    FirstException,  ///< as soon as any result failed; as AllCompleted if none fails
    AllCompleted,    ///< when every result is done
};

/// What pypool::wait returns: each distinct input result once, split by done() (input order).
template <class T>
struct WaitResult {
    std::vector<AsyncResult<T>> done;      ///< results that were done when wait returned
    std::vector<AsyncResult<T>> not_done;  ///< the others
};

namespace detail {
template <class T>
std::type_identity<T> async_result_tag(const AsyncResult<T>&);
}  // namespace detail

/// wait/as_completed: an items_range (std or range-v3) whose elements are AsyncResult<T>
/// handles (or derive from one, as MapResult<Item> does).
template <class R>
concept result_range =
    items_range<std::remove_reference_t<R>> &&
    requires { typename decltype(detail::async_result_tag(std::declval<const std::remove_cvref_t<
                   detail::range_reference_t<std::remove_reference_t<R>>>&>()))::type; };

namespace detail {

template <class T>
std::type_identity<T> async_result_tag(const AsyncResult<T>&);

/// T for an AsyncResult<T> or a class derived from one (MapResult<Item>: std::vector<Item>).
template <class E>
using async_result_value_t =
    typename decltype(async_result_tag(std::declval<const std::remove_cvref_t<E>&>()))::type;

template <class R>
using range_result_t = async_result_value_t<range_reference_t<R>>;

/// The distinct results of r, in first-seen order; ValueError for an empty handle.
template <class T, class R>
std::vector<AsyncResult<T>> distinct_results(R&& r) {
    std::vector<AsyncResult<T>> out;
    std::size_t expected = 0;
    if constexpr (any_sized_range<std::remove_reference_t<R>>) expected = range_size(r);
    out.reserve(expected);
    PointerSet seen(expected);
    for (auto&& e : r) {
        const AsyncResult<T>& a = e;
        if (!a.valid()) throw ValueError("AsyncResult has no state");
        if (seen.insert(a.state_ptr())) out.push_back(a);
    }
    return out;
}

template <class T>
std::vector<StateBase*> states_of(const std::vector<AsyncResult<T>>& rs) {
    std::vector<StateBase*> out;
    out.reserve(rs.size());
    for (const auto& r : rs) out.push_back(r.state_ptr());
    return out;
}

inline bool failed_outcome(const StateBase* s) noexcept {
    return s->is_ready() && s->outcome() == outcome_error;
}

template <class T>
WaitResult<T> wait_impl(std::vector<AsyncResult<T>> rs, std::optional<Clock::time_point> deadline,
                        ReturnWhen when) {
    auto satisfied_now = [&] {
        std::size_t ready = 0;
        for (const auto& r : rs) {
            if (!r.ready()) continue;
            ++ready;
            if (when == ReturnWhen::FirstCompleted) return true;
            if (when == ReturnWhen::FirstException && failed_outcome(r.state_ptr())) return true;
        }
        return ready == rs.size();
    };
    if (!satisfied_now() && !(deadline && *deadline <= Clock::now())) {
        MultiWait mw(states_of(rs));
        std::size_t seen = 0;
        for (;;) {
            const std::size_t c = mw.ready_count();
            bool done = c == rs.size() || (when == ReturnWhen::FirstCompleted && c > 0);
            for (std::size_t k = seen; k < c && !done; ++k)
                done = when == ReturnWhen::FirstException &&
                       failed_outcome(rs[mw.ready_at(k)].state_ptr());
            if (done) break;
            seen = c;
            if (mw.wait_beyond(seen, deadline) == seen) break;  // the deadline passed
        }
    }
    WaitResult<T> out;
    for (auto& r : rs) (r.ready() ? out.done : out.not_done).push_back(std::move(r));
    return out;
}

}  // namespace detail

/// The results of as_completed(): an input range yielding each distinct result once,
/// those already done first (input order), then the others as they complete. A yielded
/// handle is released when the iteration advances (copy it to keep it). Advancing
/// blocks; it throws TimeoutError("N (of M) futures unfinished") once the deadline given
/// to as_completed has passed with nothing left to yield, and DeadlockError on a pool's
/// callback thread where it would have to block for a result needing that thread.
template <class T>
class AsCompleted {
    struct Impl {
        std::vector<AsyncResult<T>> results;
        detail::MultiWait mw;
        std::optional<detail::Clock::time_point> deadline;
        std::size_t yielded = 0;
        bool started = false;
        AsyncResult<T>* cur = nullptr;

        Impl(std::vector<AsyncResult<T>> rs, std::optional<detail::Clock::time_point> d)
            : results(std::move(rs)), mw(detail::states_of(results)), deadline(d) {}

        void advance() {
            // Let go of the result yielded last (as CPython's as_completed does): only
            // the caller's copies keep it alive now.
            if (cur) *cur = AsyncResult<T>();
            cur = nullptr;
            const std::size_t n = results.size();
            if (yielded == n) return;
            if (mw.ready_count() == yielded && mw.wait_beyond(yielded, deadline) == yielded) {
                throw TimeoutError(std::to_string(n - yielded) + " (of " + std::to_string(n) +
                                   ") futures unfinished");
            }
            cur = &results[mw.ready_at(yielded++)];
        }
    };

public:
    /// Input iterator over an AsCompleted; operator++ blocks (see AsCompleted).
    class iterator {
    public:
        using iterator_concept = std::input_iterator_tag;   ///< single-pass
        using iterator_category = std::input_iterator_tag;  ///< single-pass
        using value_type = AsyncResult<T>;                  ///< the results yielded
        using difference_type = std::ptrdiff_t;             ///< required by std::input_iterator
        using reference = AsyncResult<T>&;                  ///< valid until the next ++

        /// A singular iterator.
        iterator() noexcept = default;
        /// The current result (a handle owned by the AsCompleted).
        reference operator*() const noexcept { return *impl_->cur; }
        /// Pointer to the current result.
        AsyncResult<T>* operator->() const noexcept { return impl_->cur; }
        /// Waits for the next result; throws TimeoutError or DeadlockError (see AsCompleted).
        iterator& operator++() {
            impl_->advance();
            return *this;
        }
        /// Same as ++it.
        void operator++(int) { ++*this; }
        /// True once every result has been yielded.
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
            return it.impl_ == nullptr || it.impl_->cur == nullptr;
        }

    private:
        friend class AsCompleted;
        explicit iterator(Impl* impl) noexcept : impl_(impl) {}
        Impl* impl_ = nullptr;
    };

    /// Internal: use pypool::as_completed.
    AsCompleted(std::vector<AsyncResult<T>> results,
                std::optional<detail::Clock::time_point> deadline)
        : impl_(std::make_unique<Impl>(std::move(results), deadline)) {}

    /// The iterator at the current position; the first call waits for the first result
    /// (throws as operator++ does).
    iterator begin() {
        if (!impl_->started) {
            impl_->started = true;
            impl_->advance();
        }
        return iterator(impl_.get());
    }
    /// The end sentinel.
    std::default_sentinel_t end() const noexcept { return {}; }
    /// Number of distinct results (M in the TimeoutError message).
    std::size_t size() const noexcept { return impl_->results.size(); }

private:
    std::unique_ptr<Impl> impl_;
};

/// Yields each distinct result of `results` as it completes (finished ones first).
/// Throws ValueError("AsyncResult has no state") for an empty handle.
template <class R>
    requires result_range<R>
AsCompleted<detail::range_result_t<R>> as_completed(R&& results) {
    using T = detail::range_result_t<R>;
    return AsCompleted<T>(detail::distinct_results<T>(std::forward<R>(results)), std::nullopt);
}
/// As as_completed(results); iteration throws TimeoutError("N (of M) futures unfinished")
/// once `timeout` (counted from this call) has passed with no result left to yield.
template <class R, class Rep, class Period>
    requires result_range<R>
AsCompleted<detail::range_result_t<R>> as_completed(R&& results,
                                                    std::chrono::duration<Rep, Period> timeout) {
    using T = detail::range_result_t<R>;
    const auto deadline = detail::deadline_after(timeout);
    return AsCompleted<T>(detail::distinct_results<T>(std::forward<R>(results)), deadline);
}
/// as_completed over a braced list: as_completed({f1, f2}).
template <class T>
AsCompleted<T> as_completed(std::initializer_list<AsyncResult<T>> results) {
    return AsCompleted<T>(detail::distinct_results<T>(results), std::nullopt);
}
/// as_completed over a braced list, with a timeout.
template <class T, class Rep, class Period>
AsCompleted<T> as_completed(std::initializer_list<AsyncResult<T>> results,
                            std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = detail::deadline_after(timeout);
    return AsCompleted<T>(detail::distinct_results<T>(results), deadline);
}

/// Blocks until `when` holds for the distinct results of `results`; returns them split
/// into done / not_done. Throws ValueError for an empty handle, DeadlockError (see
/// AsCompleted) where it would block on a pool's callback thread.
template <class R>
    requires result_range<R>
WaitResult<detail::range_result_t<R>> wait(R&& results, ReturnWhen when = ReturnWhen::AllCompleted) {
    using T = detail::range_result_t<R>;
    return detail::wait_impl<T>(detail::distinct_results<T>(std::forward<R>(results)),
                                std::nullopt, when);
}
/// As wait(results, when), but returns when `timeout` has passed; zero only checks.
template <class R, class Rep, class Period>
    requires result_range<R>
WaitResult<detail::range_result_t<R>> wait(R&& results, std::chrono::duration<Rep, Period> timeout,
                                           ReturnWhen when = ReturnWhen::AllCompleted) {
    using T = detail::range_result_t<R>;
    const auto deadline = detail::deadline_after(timeout);
    return detail::wait_impl<T>(detail::distinct_results<T>(std::forward<R>(results)), deadline,
                                when);
}
/// wait over a braced list: wait({f1, f2}, ReturnWhen::FirstCompleted).
template <class T>
WaitResult<T> wait(std::initializer_list<AsyncResult<T>> results,
                   ReturnWhen when = ReturnWhen::AllCompleted) {
    return detail::wait_impl<T>(detail::distinct_results<T>(results), std::nullopt, when);
}
/// wait over a braced list, with a timeout.
template <class T, class Rep, class Period>
WaitResult<T> wait(std::initializer_list<AsyncResult<T>> results,
                   std::chrono::duration<Rep, Period> timeout,
                   ReturnWhen when = ReturnWhen::AllCompleted) {
    const auto deadline = detail::deadline_after(timeout);
    return detail::wait_impl<T>(detail::distinct_results<T>(results), deadline, when);
}

}  // namespace pypool
