#pragma once
/// @file
/// Bulk work: pypool::None (the item of a map over a void function), the item-type traits,
/// MapResult<Item> (the handle of map_async/starmap_async) and IMapIterator<Item> (the
/// lazy iterator of imap/imap_unordered).

#include <atomic>
#include <chrono>
#include <compare>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <range/v3/range/concepts.hpp>

#include <pypool/detail/concepts.hpp>
#include <pypool/detail/deadline.hpp>
#include <pypool/detail/state.hpp>
#include <pypool/errors.hpp>
#include <pypool/result.hpp>

namespace pypool {

/// The item a map/imap/starmap yields for a function returning void (Python's None):
/// empty, and every None equals every other.
struct None {
    /// All Nones are equal.
    friend constexpr bool operator==(const None&, const None&) noexcept = default;
    /// All Nones are equivalent.
    friend constexpr std::strong_ordering operator<=>(const None&, const None&) noexcept = default;
};

namespace detail {

/// True for C++20 views and range-v3 views (range-v3 0.12 views are std input ranges, but
/// not std::ranges::view).
template <class Rng>
inline constexpr bool is_view_v = std::ranges::view<Rng> || ranges::view_<Rng>;

/// How the bulk methods read and hold the elements of an input range given as R (as
/// forwarded: an lvalue reference for an lvalue range).
///  - Lazy: imap (input read while the iterator lives); Blocking: map/starmap (the call
///    returns after every item ran).
///  - Elements are referenced (Stored is a pointer) where that is safe: a forward range of
///    lvalues that outlives the work (an lvalue range for map/imap, or a container moved
///    into the call and kept by it); otherwise they are copied/moved into the call.
///  - Arg is what the function receives: an lvalue for an lvalue range, an rvalue for an
///    owned container or a range of prvalues.
template <class R, bool Lazy, bool Blocking>
struct InputTraits {
    using Rng = std::remove_cvref_t<R>;
    static constexpr bool owned = !std::is_lvalue_reference_v<R>;
    static constexpr bool container = owned && !is_view_v<Rng>;
    /// The type iterated: the kept copy for owned ranges, the caller's range otherwise.
    using Iterated = std::conditional_t<owned, Rng, std::remove_reference_t<R>>;
    using Ref = range_reference_t<Iterated>;
    using Value = range_value_t<Iterated>;
    using V = std::remove_reference_t<Ref>;
    static constexpr bool lref = std::is_lvalue_reference_v<Ref>;
    static constexpr bool by_pointer =
        lref && any_forward_range<Iterated> && (Lazy || Blocking || container);
    /// The owned range must be kept while items run (they point into it).
    static constexpr bool keep_range = owned && by_pointer;
    using Stored = std::conditional_t<by_pointer, V*, Value>;
    using Arg = std::conditional_t<by_pointer, std::conditional_t<container, V&&, V&>,
                                   std::conditional_t<lref, Value&, Value&&>>;

    /// Reads one stored element from an iterator.
    template <class It>
    static Stored store(It& it) {
        if constexpr (by_pointer)
            return std::addressof(*it);
        else
            return Stored(*it);
    }
    /// The argument for the function from a stored element.
    static Arg arg(Stored& s) noexcept {
        if constexpr (by_pointer)
            return static_cast<Arg>(*s);
        else
            return static_cast<Arg>(s);
    }
};

/// Calls f with a (map) or std::apply with a (starmap).
template <bool Star, class Fn, class A>
decltype(auto) call_item(Fn& f, A&& a) {
    if constexpr (Star)
        return std::apply(f, std::forward<A>(a));
    else
        return std::invoke(f, std::forward<A>(a));
}

/// R or None for void.
template <class R>
using item_of_t = std::conditional_t<std::is_void_v<R>, None, std::decay_t<R>>;

/// The result of calling f on one element as the bulk call passes it (Arg), or
/// not_callable where that call is invalid (see apply_result_t).
template <bool Star, class Fn, class A>
struct CallItemResult {
    using type = not_callable;
};
template <class Fn, class A>
    requires std::invocable<Fn&, A>
struct CallItemResult<false, Fn, A> {
    using type = std::invoke_result_t<Fn&, A>;
};
template <class Fn, class A>
    requires applicable_to_tuple<Fn&, A>
struct CallItemResult<true, Fn, A> {
    using type = decltype(std::apply(std::declval<Fn&>(), std::declval<A>()));
};

template <class F, class R, bool Star, bool Lazy, bool Blocking,
          bool = items_range<std::remove_reference_t<R>>>
struct BulkItem {
    using type = not_callable;
};
template <class F, class R, bool Star, bool Lazy, bool Blocking>
struct BulkItem<F, R, Star, Lazy, Blocking, true> {
    using type = item_of_t<typename CallItemResult<
        Star, std::decay_t<F>, typename InputTraits<R, Lazy, Blocking>::Arg>::type>;
};

/// The item type of a map/imap/starmap of F over R (not_callable if f does not fit).
template <class F, class R, bool Star, bool Lazy, bool Blocking>
using bulk_item_t = typename BulkItem<F, R, Star, Lazy, Blocking>::type;

/// Item types of map_async, starmap_async and imap/imap_unordered.
template <class F, class R>
using async_item_t = bulk_item_t<F, R, false, false, false>;
template <class F, class R>
using async_staritem_t = bulk_item_t<F, R, true, false, false>;
template <class F, class R>
using lazy_item_t = bulk_item_t<F, R, false, true, false>;

/// The part of a map's state MapResult reads: progress counters.
template <class Item>
class MapStateBase : public ResultState<std::vector<Item>> {
public:
    using ResultState<std::vector<Item>>::ResultState;
    std::atomic<std::size_t> completed_{0};  // items of finished chunks (also failed ones)
    std::size_t total_ = 0;                  // items in the input

protected:
    ~MapStateBase() override = default;
};

template <class Item>
class ImapStreamBase;

}  // namespace detail

/// The item type of pool.map(f, range) (R, or None for a void function).
template <class F, class Range>
using map_item_t = detail::bulk_item_t<F, Range, false, false, true>;
/// The item type of pool.starmap(f, range) (R, or None for a void function).
template <class F, class Range>
using starmap_item_t = detail::bulk_item_t<F, Range, true, false, true>;

/// The handle of map_async/starmap_async: an AsyncResult of the whole vector (input
/// order) plus live progress counters.
template <class Item>
class MapResult : public AsyncResult<std::vector<Item>> {
    using Base = AsyncResult<std::vector<Item>>;

public:
    /// An empty handle: valid() is false, completed() and total() are 0, waits throw ValueError.
    MapResult() noexcept = default;
    /// Internal: adopts a reference to a map's state.
    explicit MapResult(detail::StateRef<detail::ResultState<std::vector<Item>>> s) noexcept
        : Base(std::move(s)) {}

    /// Items finished so far, failed ones included (for progress bars); advances as each
    /// chunk finishes, by the chunk's item count. Never throws.
    std::size_t completed() const noexcept {
        const auto* s = map_state();
        return s ? s->completed_.load(std::memory_order_relaxed) : 0;
    }
    /// Items in the input. Never throws.
    std::size_t total() const noexcept {
        const auto* s = map_state();
        return s ? s->total_ : 0;
    }

private:
    const detail::MapStateBase<Item>* map_state() const noexcept {
        return static_cast<const detail::MapStateBase<Item>*>(this->state_ptr());
    }
};

/// The lazy iterator of imap/imap_unordered: move-only, a std::ranges::input_range (and
/// a range-v3 one, taken as an lvalue). Items that failed throw at their position (imap)
/// or when they arrive (imap_unordered); iteration goes on with the next item.
template <class Item>
class IMapIterator {
public:
    /// The end of the iteration.
    struct sentinel {};

    /// A single-pass iterator over the items; all copies refer to the same IMapIterator.
    class iterator {
    public:
        using value_type = Item;                            ///< the items yielded
        using reference = Item&;                            ///< valid until the next ++
        using difference_type = std::ptrdiff_t;             ///< required by std::input_iterator
        using iterator_concept = std::input_iterator_tag;   ///< single-pass
        using iterator_category = std::input_iterator_tag;  ///< single-pass

        /// A singular iterator.
        iterator() noexcept = default;
        /// The current item; valid until the next increment.
        Item& operator*() const noexcept { return *owner_->current_; }
        /// Address of the current item.
        Item* operator->() const noexcept { return std::addressof(*owner_->current_); }
        /// Fetches the next item (blocks); throws what that item's task threw.
        iterator& operator++() {
            owner_->advance();
            return *this;
        }
        /// Same as ++it.
        void operator++(int) { ++*this; }
        /// True once the iteration is exhausted.
        friend bool operator==(const iterator& it, sentinel) noexcept { return it.at_end(); }
        /// Two iterators of the same IMapIterator compare equal (single pass).
        friend bool operator==(const iterator& a, const iterator& b) noexcept {
            return a.owner_ == b.owner_;
        }

    private:
        friend class IMapIterator;
        explicit iterator(IMapIterator* o) noexcept : owner_(o) {}
        bool at_end() const noexcept { return !owner_ || !owner_->current_; }
        IMapIterator* owner_ = nullptr;
    };

    /// An exhausted iterator (no stream).
    IMapIterator() noexcept = default;
    /// Internal: adopts a reference to a stream.
    explicit IMapIterator(detail::ImapStreamBase<Item>* s) noexcept : s_(s) {}
    /// Moves the stream; other becomes exhausted.
    IMapIterator(IMapIterator&& o) noexcept
        : s_(std::exchange(o.s_, nullptr)), current_(std::move(o.current_)) {
        o.current_.reset();
    }
    /// Destroys this stream (see the destructor) and takes other's.
    IMapIterator& operator=(IMapIterator&& o) noexcept {
        if (this != &o) {
            abandon();
            s_ = std::exchange(o.s_, nullptr);
            current_ = std::move(o.current_);
            o.current_.reset();
        }
        return *this;
    }
    IMapIterator(const IMapIterator&) = delete;
    IMapIterator& operator=(const IMapIterator&) = delete;
    /// Cancels the chunks still queued, waits for the running ones (never for queued or
    /// unread work) and frees everything. Never throws.
    ~IMapIterator() { abandon(); }

    /// Fetches the first item (blocks) and returns an iterator to it; throws what that
    /// item threw (then begin() again continues with the next item).
    iterator begin() {
        if (!current_) advance();
        return iterator(this);
    }
    /// The end.
    sentinel end() const noexcept { return {}; }

    /// The next item, or nullopt once exhausted; blocks. Throws what the item's task threw,
    /// the exception reading the input threw (at its position), or CancelledError once
    /// after terminate() cancelled or left unread some items.
    std::optional<Item> next() {
        if (current_) return take_current();
        return fetch(std::nullopt);
    }
    /// As next(), but throws TimeoutError if nothing arrives within timeout (zero or
    /// negative only checks).
    template <class Rep, class Period>
    std::optional<Item> next(std::chrono::duration<Rep, Period> timeout) {
        if (current_) return take_current();
        return fetch(detail::deadline_after(timeout));
    }

private:
    std::optional<Item> fetch(std::optional<detail::Clock::time_point> deadline);
    // Hands out the item begin()/operator++ fetched; it is gone afterwards even if moving
    // it throws (then that exception is its outcome), so no item is delivered twice.
    std::optional<Item> take_current() {
        struct Clear {
            std::optional<Item>& c;
            ~Clear() { c.reset(); }
        } clear{current_};
        return std::optional<Item>(std::move(current_));
    }
    void advance() {
        current_.reset();
        current_ = fetch(std::nullopt);
    }
    void abandon() noexcept;

    detail::ImapStreamBase<Item>* s_ = nullptr;
    std::optional<Item> current_;  // the item begin()/operator++ fetched
};

}  // namespace pypool

#include <pypool/detail/imap_stream.hpp>
#include <pypool/detail/map_state.hpp>
