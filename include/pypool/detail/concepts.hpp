#pragma once
/// @file
/// The requirements of pypool's public templates, as named concepts, so that a call that
/// does not fit fails at the user's line and says what was expected (docs/ERRORS.md lists
/// the messages). Also the range access the bulk methods use: any range that the standard
/// library or range-v3 calls an input range (range-v3's iota over long or std::size_t is
/// not a std::ranges::range: its difference type is a range-v3 class).

#include <cstddef>
#include <functional>
#include <iterator>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>

#include <range/v3/range/access.hpp>
#include <range/v3/range/concepts.hpp>
#include <range/v3/range/primitives.hpp>
#include <range/v3/range/traits.hpp>

namespace pypool {

// ---- ranges ------------------------------------------------------------------------------

/// An input range by the standard library's or by range-v3's definition (lazy views,
/// endless ones and single-pass ones included): what map, imap and starmap accept.
template <class R>
concept items_range = std::ranges::input_range<R> || ranges::input_range<R>;

namespace detail {

/// The result type a signature names where its constraint fails (never a real result).
struct not_callable {};

/// begin/end/size of an items_range: std::ranges' where it is a std input range, else
/// range-v3's.
struct RangeBegin {
    template <class R>
    constexpr auto operator()(R& r) const {
        if constexpr (std::ranges::input_range<R>)
            return std::ranges::begin(r);
        else
            return ranges::begin(r);
    }
};
struct RangeEnd {
    template <class R>
    constexpr auto operator()(R& r) const {
        if constexpr (std::ranges::input_range<R>)
            return std::ranges::end(r);
        else
            return ranges::end(r);
    }
};
inline constexpr RangeBegin range_begin{};
inline constexpr RangeEnd range_end{};

template <class R>
using range_iterator_t = decltype(range_begin(std::declval<R&>()));
template <class R>
using range_sentinel_t = decltype(range_end(std::declval<R&>()));
template <class R>
using range_reference_t = std::iter_reference_t<range_iterator_t<R>>;

template <class R, bool Std = std::ranges::input_range<R>>
struct RangeValue {
    using type = std::ranges::range_value_t<R>;
};
template <class R>
struct RangeValue<R, false> {
    using type = ranges::range_value_t<R>;
};
template <class R>
using range_value_t = typename RangeValue<R>::type;

/// A multi-pass range (std or range-v3).
template <class R>
concept any_forward_range = std::ranges::forward_range<R> || ranges::forward_range<R>;
/// A range that knows its size (std or range-v3).
template <class R>
concept any_sized_range = std::ranges::sized_range<R> || ranges::sized_range<R>;

/// The size of an any_sized_range.
template <class R>
std::size_t range_size(R& r) {
    if constexpr (std::ranges::sized_range<R>)
        return static_cast<std::size_t>(std::ranges::size(r));
    else
        return static_cast<std::size_t>(ranges::size(r));
}

// ---- calling the function -----------------------------------------------------------------

template <class T>
concept tuple_like = requires { std::tuple_size<std::remove_cvref_t<T>>::value; };

template <class F, class T, std::size_t... I>
constexpr bool applicable_impl(std::index_sequence<I...>) {
    return std::is_invocable_v<F, decltype(std::get<I>(std::declval<T>()))...>;
}

/// std::apply(f, t) is valid: t is tuple-like and f accepts its elements (checked without
/// instantiating std::apply, whose errors land inside <tuple>).
template <class F, class T>
concept applicable_to_tuple =
    tuple_like<T> &&
    applicable_impl<F, T>(std::make_index_sequence<std::tuple_size_v<std::remove_cvref_t<T>>>{});

template <class F, class T, std::size_t... I>
constexpr bool applicable_lvalue_impl(std::index_sequence<I...>) {
    return std::is_invocable_v<F, std::remove_reference_t<decltype(std::get<I>(std::declval<T&>()))>&...>;
}

template <class F, class... Args>
constexpr bool wants_non_const_ref() {
    return !std::is_invocable_v<F, Args...> &&
           std::is_invocable_v<F, std::remove_cvref_t<Args>&...>;
}

/// Always true; refuses at compile time, with a message saying what to write, a function
/// that takes a non-const reference to an argument that pypool copies into the task.
template <class F, class... Args>
consteval bool no_reference_to_copied_args() {
    static_assert(!wants_non_const_ref<std::decay_t<F>, std::decay_t<Args>...>(),
                  "pypool: f takes a non-const reference parameter, but apply/apply_async/"
                  "submit/async_apply call it with copies of the arguments (as Python's args=): "
                  "pass std::ref(x) to share x with the task (x must outlive it), or take the "
                  "parameter by value or const&");
    return true;
}

}  // namespace detail

// ---- single tasks --------------------------------------------------------------------------

/// apply/apply_async/submit/async_apply: f, decay-copied, can be called with the
/// decay-copied arguments as rvalues. A non-const reference parameter is refused with a
/// message suggesting std::ref.
template <class F, class... Args>
concept task_callable = detail::no_reference_to_copied_args<F, Args...>() &&
                        std::invocable<std::decay_t<F>, std::decay_t<Args>...>;

// ---- bulk work -----------------------------------------------------------------------------

namespace detail {

template <class R, bool Lazy, bool Blocking>
struct InputTraits;

/// f accepts one element as the bulk call passes it (Arg: see InputTraits).
template <class Fn, class Arg>
concept callable_with_element = std::invocable<Fn&, Arg>;
/// std::apply(f, element) is valid for the element as the bulk call passes it.
template <class Fn, class Arg>
concept callable_with_tuple_elements = applicable_to_tuple<Fn&, Arg>;

/// f needs a non-const lvalue reference to the element (or, for starmap, to one of the
/// tuple's elements) where the call hands it a copy or a temporary.
template <bool Star, class Fn, class Arg>
constexpr bool element_wants_non_const_ref() {
    using V = std::remove_cvref_t<Arg>;
    if constexpr (Star) {
        if constexpr (!tuple_like<V>) {
            return false;
        } else {
            constexpr auto idx = std::make_index_sequence<std::tuple_size_v<V>>{};
            return !applicable_impl<Fn&, const V&>(idx) && !applicable_impl<Fn&, V&&>(idx) &&
                   applicable_lvalue_impl<Fn&, V>(idx);
        }
    } else {
        return !std::is_invocable_v<Fn&, const V&> && !std::is_invocable_v<Fn&, V&&> &&
               std::is_invocable_v<Fn&, V&>;
    }
}

/// Always true for a range; refuses at compile time (with what to write instead) a
/// function taking a non-const reference where the call would change copies.
template <class F, class R, bool Star, bool Lazy, bool Blocking>
consteval bool no_reference_to_copied_items() {
    if constexpr (items_range<std::remove_reference_t<R>>) {
        using T = InputTraits<R, Lazy, Blocking>;
        using Fn = std::decay_t<F>;
        // f is handed a copy (async forms, single-pass ranges) or an rvalue (a temporary
        // container, a view yielding values) where it asks for a non-const lvalue.
        constexpr bool copied = !T::by_pointer || !std::is_lvalue_reference_v<typename T::Arg>;
        constexpr bool trap = copied && element_wants_non_const_ref<Star, Fn, typename T::Arg>();
        if constexpr (!Lazy && !Blocking) {
            static_assert(!trap,
                          "pypool: f takes a non-const reference parameter, but map_async/"
                          "starmap_async call it with copies of the elements, so the caller's "
                          "elements would not change: use map or imap over the range to change "
                          "them in place, or take the parameter by value or const&");
        } else {
            static_assert(!trap,
                          "pypool: f takes a non-const reference parameter, but the elements "
                          "are temporaries (an rvalue range, a view yielding values, or a "
                          "single-pass range, which map/imap copy): pass a container as an "
                          "lvalue to change its elements in place, or take the parameter by "
                          "value or const&");
        }
    }
    return true;
}

template <class F, class R, bool Star, bool Lazy, bool Blocking>
concept bulk_callable_impl =
    std::move_constructible<std::decay_t<F>> &&
    no_reference_to_copied_items<F, R, Star, Lazy, Blocking>();

}  // namespace detail

/// map: items is an items_range and f accepts one of its elements.
template <class F, class Range>
concept map_callable =
    items_range<std::remove_reference_t<Range>> &&
    detail::bulk_callable_impl<F, Range, false, false, true> &&
    detail::callable_with_element<std::decay_t<F>,
                                  typename detail::InputTraits<Range, false, true>::Arg>;
/// map_async: items is an items_range and f accepts a copy of one of its elements.
template <class F, class Range>
concept map_async_callable =
    items_range<std::remove_reference_t<Range>> &&
    detail::bulk_callable_impl<F, Range, false, false, false> &&
    detail::callable_with_element<std::decay_t<F>,
                                  typename detail::InputTraits<Range, false, false>::Arg>;
/// imap/imap_unordered: items is an items_range and f accepts one of its elements.
template <class F, class Range>
concept imap_callable =
    items_range<std::remove_reference_t<Range>> &&
    detail::bulk_callable_impl<F, Range, false, true, false> &&
    detail::callable_with_element<std::decay_t<F>,
                                  typename detail::InputTraits<Range, true, false>::Arg>;
/// starmap: tuples is an items_range of tuple-like elements and std::apply(f, element) is valid.
template <class F, class Range>
concept starmap_callable =
    items_range<std::remove_reference_t<Range>> &&
    detail::bulk_callable_impl<F, Range, true, false, true> &&
    detail::callable_with_tuple_elements<std::decay_t<F>,
                                         typename detail::InputTraits<Range, false, true>::Arg>;
/// starmap_async: as starmap_callable, for a copy of each element.
template <class F, class Range>
concept starmap_async_callable =
    items_range<std::remove_reference_t<Range>> &&
    detail::bulk_callable_impl<F, Range, true, false, false> &&
    detail::callable_with_tuple_elements<std::decay_t<F>,
                                         typename detail::InputTraits<Range, false, false>::Arg>;

}  // namespace pypool
