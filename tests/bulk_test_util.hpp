#pragma once
// Helpers shared by the bulk-work tests (map, starmap, imap, imap_unordered, cpython_map).

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <iterator>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <string>

namespace bulk_test {

/// CPython's SayWhenError.
struct SayWhenError : std::invalid_argument {
    SayWhenError() : std::invalid_argument("Somebody said when") {}
};

/// CPython's exception_throwing_generator(total, when): yields 0..total-1 but throws
/// SayWhenError when reaching position `when` (-1: on the very first read).
class ThrowingRange : public std::ranges::view_base {
public:
    struct iterator {
        using value_type = int;
        using difference_type = std::ptrdiff_t;
        const ThrowingRange* r = nullptr;
        int pos = 0;
        int operator*() const {
            if (pos == r->when_) throw SayWhenError();
            return pos;
        }
        iterator& operator++() {
            ++pos;
            return *this;
        }
        void operator++(int) { ++pos; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) {
            return it.pos >= it.r->total_;
        }
    };
    ThrowingRange() = default;
    ThrowingRange(int total, int when) : total_(total), when_(when) {}
    iterator begin() const {
        if (when_ == -1) throw SayWhenError();
        return iterator{this, 0};
    }
    std::default_sentinel_t end() const { return {}; }

    int total_ = 0;
    int when_ = -1;
};
static_assert(std::ranges::input_range<ThrowingRange>);

/// Counters shared by an InstrumentedRange and its test.
struct ReadStats {
    std::atomic<long> read{0};          // elements read so far
    std::atomic<int> readers{0};        // threads reading right now
    std::atomic<bool> overlap{false};   // two threads read at once
};

/// An endless (or bounded) single-pass input range 0, 1, 2, ... that counts how far it has
/// been read and detects two threads reading it at once.
class InstrumentedRange : public std::ranges::view_base {
public:
    struct iterator {
        using value_type = long;
        using difference_type = std::ptrdiff_t;
        InstrumentedRange* r = nullptr;
        long pos = 0;
        long operator*() const {
            Guard g(*r->stats_);
            r->stats_->read.fetch_add(1);
            return pos;
        }
        iterator& operator++() {
            Guard g(*r->stats_);
            ++pos;
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) {
            return it.r->limit_ >= 0 && it.pos >= it.r->limit_;
        }
    };
    InstrumentedRange() = default;
    explicit InstrumentedRange(std::shared_ptr<ReadStats> s, long limit = -1)
        : stats_(std::move(s)), limit_(limit) {}
    iterator begin() { return iterator{this, 0}; }
    std::default_sentinel_t end() const { return {}; }

private:
    struct Guard {
        ReadStats& s;
        explicit Guard(ReadStats& st) : s(st) {
            if (s.readers.fetch_add(1) != 0) s.overlap = true;
        }
        ~Guard() { s.readers.fetch_sub(1); }
    };

public:
    std::shared_ptr<ReadStats> stats_;
    long limit_ = -1;
};
static_assert(std::ranges::input_range<InstrumentedRange>);

/// The calling thread's name (pthread_getname_np).
inline std::string thread_name() {
    char buf[32] = {};
    pthread_getname_np(pthread_self(), buf, sizeof buf);
    return buf;
}

}  // namespace bulk_test
