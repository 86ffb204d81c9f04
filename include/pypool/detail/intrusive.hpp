#pragma once
// Internal: small helpers for the intrusive singly linked lists of the core and imap.

namespace pypool::detail {

/// Reverses the list `list` threaded through the member `next`; returns its new head. Used
/// to turn a lock-free stack (newest first) into completion order.
template <class T>
T* reverse_list(T* list, T* T::*next) noexcept {
    T* reversed = nullptr;
    while (list) {
        T* rest = list->*next;
        list->*next = reversed;
        reversed = list;
        list = rest;
    }
    return reversed;
}

}  // namespace pypool::detail
