#pragma once
// Internal: the state of one map_async/starmap_async (and map/starmap, which wait on it).
//
// The input is read completely on the calling thread (as Python does), then split into
// chunks, each one Job; all chunk jobs live in one array owned by the state. A contiguous
// sized input whose elements the items may reference (an lvalue range of map/starmap, or a
// container moved into the call) is not copied: chunks index it directly. Results go
// straight into the final vector (pre-sized, assigned by the chunks) where Item is
// nothrow default-constructible and nothrow move-assignable; otherwise they are
// constructed in place in one uninitialised buffer and moved into the final vector once
// every chunk finished. A failing item records its exception if its index is the lowest
// so far; every other item still runs. Progress (completed_) is counted per chunk.
//
// Units of work: each chunk takes one when submitted. Every chunk but the last one to
// finish releases its own; the last one completes the state (make_ready releases that
// unit) unless cancel() already completed it (then make_ready released one already).
// References: one for the handle, one shared by all chunks (dropped by the last).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include <pypool/detail/pool_core.hpp>
#include <pypool/detail/state.hpp>
#include <pypool/errors.hpp>
#include <pypool/map.hpp>
#include <pypool/options.hpp>

namespace pypool::detail {

template <class Item, class Fn, class Traits, bool Star>
class MapState final : public MapStateBase<Item> {
    using Stored = typename Traits::Stored;
    using Kept = std::conditional_t<Traits::keep_range, typename Traits::Rng, char>;
    using Iterated = typename Traits::Iterated;
    // Index the input in place (no vector of pointers): its elements are referenced anyway
    // and lie in one array, so a worker computes their address without calling user code.
    static constexpr bool direct_in = Traits::by_pointer &&
                                      std::ranges::contiguous_range<Iterated> &&
                                      std::ranges::sized_range<Iterated>;
    // Results assigned into the final vector (pre-sized), no buffer and no final copy.
    static constexpr bool direct_out = std::is_nothrow_default_constructible_v<Item> &&
                                       std::is_nothrow_move_assignable_v<Item> &&
                                       std::is_nothrow_move_constructible_v<Item>;
    static constexpr bool track_ok = !direct_out && !std::is_trivially_destructible_v<Item>;
    static constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

    struct Chunk final : Job {
        MapState* owner = nullptr;
        std::size_t begin = 0, end = 0;
        void run() noexcept override { owner->run_chunk(*this); }
        void discard() noexcept override { owner->discard_chunk(); }
    };

public:
    /// Reads the whole input (throws what reading throws) and prepares the chunks.
    template <class F, class R>
    MapState(PoolCore* pool, F&& f, R&& r, MapOptions<Item>&& o)
        : MapStateBase<Item>(pool,
                             (o.callback ? flag_callback : 0U) |
                                 (o.error_callback ? flag_error_callback : 0U),
                             2),
          fn_(std::in_place, std::forward<F>(f)),
          callback_(std::move(o.callback)),
          error_callback_(std::move(o.error_callback)) {
        if constexpr (Traits::keep_range) {
            kept_.emplace(std::forward<R>(r));
            read(*kept_);
        } else if constexpr (Traits::owned) {
            typename Traits::Rng local(std::forward<R>(r));
            read(local);
        } else {
            read(r);
        }
        const std::size_t n = direct_in ? in_size_ : inputs_.size();
        this->total_ = n;
        if (n == 0) return;
        std::size_t cs = o.chunksize;
        if (cs == 0) {  // Python: chunksize, extra = divmod(len, 4 * processes)
            const std::size_t d = 4 * pool->size();
            cs = n / d + (n % d != 0 ? 1 : 0);
        }
        nchunks_ = n / cs + (n % cs != 0 ? 1 : 0);
        chunks_.reset(new Chunk[nchunks_]);
        if constexpr (track_ok) ok_.reset(new bool[n]());
        if constexpr (direct_out)  // last: nothing throws after it
            outv_.resize(n);
        else
            out_ = std::allocator<Item>().allocate(n);
        for (std::size_t c = 0; c < nchunks_; ++c) {
            chunks_[c].owner = this;
            chunks_[c].begin = c * cs;
            chunks_[c].end = std::min(n, (c + 1) * cs);
            chunks_[c].next_ = c + 1 < nchunks_ ? &chunks_[c + 1] : nullptr;
        }
        remaining_.store(nchunks_, std::memory_order_relaxed);
    }

    /// Submits the chunks (or completes an empty map). Throws if the pool does not accept
    /// work; then the caller still owns both references.
    void launch() {
        PoolCore* pool = this->pool_;
        if (nchunks_ == 0) {
            pool->acquire_unit();
            this->refs_.fetch_sub(1, std::memory_order_relaxed);  // no chunk reference
            // no task was submitted, so the stats count no outcome for it either
            this->word_.fetch_or(flag_uncounted, std::memory_order_relaxed);
            this->emplace_value();
            this->finish(outcome_value);  // through the loop if a callback must see []
            return;
        }
        pool->submit_batch(&chunks_[0], &chunks_[nchunks_ - 1], nchunks_);
    }

    /// Cancels the map if none of its chunks has started; then every chunk is skipped.
    bool cancel() noexcept override {
        std::uint32_t w = this->word_.load(std::memory_order_acquire);
        for (;;) {
            if ((w & outcome_mask) == outcome_cancelled) return true;
            if ((w & (phase_mask | outcome_mask)) != phase_pending) return false;
            const std::uint32_t nw =
                (w & ~(phase_mask | outcome_mask)) | phase_completing | outcome_cancelled;
            if (this->word_.compare_exchange_weak(w, nw, std::memory_order_acq_rel,
                                                  std::memory_order_acquire))
                break;
        }
        set_cancelled_error();
        // No chunk started, so all are queued: no chunk runs an item from here on (a worker
        // reaching one sees the outcome), so the input and the function go now, not with
        // the last handle; and the chunks leave `queued` now (the worker or terminate()
        // that reaches one counts nothing). Chunks still hold units, so the pool outlives
        // this.
        release_inputs();
        this->pool_->note_cancelled(nchunks_);
        if (w & flag_error_callback)
            this->pool_->post_callbacks(this);
        else
            this->make_ready();
        return true;
    }

private:
    ~MapState() override {
        destroy_outputs();
        if (out_) std::allocator<Item>().deallocate(out_, this->total_);
    }

    template <class Rg>
    void read(Rg& rg) {
        if constexpr (direct_in) {
            in_data_ = std::ranges::data(rg);
            in_size_ = static_cast<std::size_t>(std::ranges::size(rg));
            return;
        }
        if constexpr (any_sized_range<Rg>) inputs_.reserve(range_size(rg));
        auto it = range_begin(rg);
        auto end = range_end(rg);
        for (; it != end; ++it) inputs_.push_back(Traits::store(it));
    }

    void set_cancelled_error() noexcept {
        try {
            this->error_ = std::make_exception_ptr(CancelledError());
        } catch (...) {
            this->error_ = std::current_exception();
        }
    }

    void run_chunk(Chunk& c) noexcept {
        PoolCore* pool = this->pool_;
        const std::uint32_t w = this->word();
        bool run = (w & outcome_mask) != outcome_cancelled;
        if (run && (w & phase_mask) == phase_pending)  // the first chunk starts the map
            run = this->try_start() || (this->word() & outcome_mask) != outcome_cancelled;
        if (!run) {  // counted by cancel()
            chunk_done(false, false);
            return;
        }
        pool->note_started();
        bool ok = true;
        if constexpr (requires { Fn::pypool_batch; }) {
            // A pool kind that ships the whole chunk at once (ProcessPool: one message).
            const int st = fn_->template run_batch<Star, Item>(
                c.end - c.begin,
                [&](std::size_t k) -> decltype(auto) {
                    if constexpr (direct_in) {
                        Stored p = in_data_ + (c.begin + k);
                        return Traits::arg(p);
                    } else {
                        return Traits::arg(inputs_[c.begin + k]);
                    }
                },
                [&](std::size_t k, Item&& v) { store_item(c.begin + k, std::move(v)); },
                [&](std::size_t k, std::exception_ptr e) { record_failure(c.begin + k, std::move(e)); });
            ok = st == 0;
            if (st == 2) partial_cancel_.store(true, std::memory_order_relaxed);  // killed by terminate()
        } else {
            for (std::size_t i = c.begin; i < c.end; ++i) {
                try {
                    run_item(i);
                } catch (...) {
                    ok = false;
                    record_failure(i, std::current_exception());
                }
            }
        }
        this->completed_.fetch_add(c.end - c.begin, std::memory_order_relaxed);
        pool->note_ran();
        chunk_done(true, ok);
    }

    // Runs item i and stores its result; throws what the function (or storing) throws.
    void run_item(std::size_t i) {
        if constexpr (direct_in) {
            Stored p = in_data_ + i;
            run_item(i, p);
        } else {
            run_item(i, inputs_[i]);
        }
    }
    void run_item(std::size_t i, Stored& in) {
        if constexpr (std::is_same_v<Item, None> &&
                      std::is_void_v<decltype(call_item<Star>(*fn_, Traits::arg(in)))>) {
            call_item<Star>(*fn_, Traits::arg(in));
            if constexpr (!direct_out) ::new (static_cast<void*>(out_ + i)) None{};
        } else if constexpr (direct_out) {
            outv_[i] = call_item<Star>(*fn_, Traits::arg(in));
        } else {
            ::new (static_cast<void*>(out_ + i)) Item(call_item<Star>(*fn_, Traits::arg(in)));
            if constexpr (track_ok) ok_[i] = true;
        }
    }

    // Stores the result of item i (the batch path); throws what constructing it throws.
    void store_item(std::size_t i, Item&& v) {
        if constexpr (direct_out) {
            outv_[i] = std::move(v);
        } else {
            ::new (static_cast<void*>(out_ + i)) Item(std::move(v));
            if constexpr (track_ok) ok_[i] = true;
        }
    }

    void discard_chunk() noexcept {
        // terminate()/shutdown(cancel_futures): cancels the whole map if nothing started.
        if (!cancel()) {  // cancel() counted every chunk; else only this one leaves
            partial_cancel_.store(true, std::memory_order_relaxed);
            this->pool_->note_cancelled();
        }
        chunk_done(false, false);
    }

    void record_failure(std::size_t i, std::exception_ptr e) noexcept {
        std::lock_guard lk(fail_m_);
        if (i < fail_index_) {
            fail_index_ = i;
            fail_error_ = std::move(e);
        }
    }

    void chunk_done(bool ran, bool ok) noexcept {
        PoolCore* pool = this->pool_;
        if (remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1) {
            if (ran) pool->note_outcome(ok);
            pool->release_unit();
            return;
        }
        // The last chunk.
        if ((this->word() & outcome_mask) == outcome_cancelled) {  // cancel() completed it
            this->release();
            return;
        }
        std::uint32_t outcome = outcome_value;
        if (partial_cancel_.load(std::memory_order_relaxed)) {
            set_cancelled_error();
            outcome = outcome_cancelled;
            if (ran) pool->note_outcome(ok);  // make_ready counts no cancelled state
        } else if (fail_index_ != npos) {
            this->error_ = std::move(fail_error_);
            outcome = outcome_error;
        } else if constexpr (direct_out) {
            this->emplace_value(std::move(outv_));
        } else {
            try {
                std::vector<Item> v;
                v.reserve(this->total_);
                for (std::size_t i = 0; i < this->total_; ++i) v.push_back(std::move(out_[i]));
                this->emplace_value(std::move(v));
            } catch (...) {
                this->error_ = std::current_exception();
                outcome = outcome_error;
            }
            if (outcome == outcome_value) all_ok_ = true;
        }
        destroy_outputs();
        release_inputs();
        this->finish(outcome);
        this->release();
    }

    void destroy_outputs() noexcept {
        if constexpr (direct_out) {
            std::vector<Item>().swap(outv_);
        } else if constexpr (!std::is_trivially_destructible_v<Item>) {
            if (!out_) return;
            for (std::size_t i = 0; i < this->total_; ++i) {
                if (all_ok_ || (ok_ && ok_[i])) std::destroy_at(out_ + i);
            }
            ok_.reset();
            all_ok_ = false;
            std::allocator<Item>().deallocate(out_, this->total_);
            out_ = nullptr;
        } else if (out_) {
            std::allocator<Item>().deallocate(out_, this->total_);
            out_ = nullptr;
        }
    }
    // The pool keeps no reference to the arguments, nor the function, once the map
    // completed or was cancelled.
    void release_inputs() noexcept {
        std::vector<Stored>().swap(inputs_);
        if constexpr (Traits::keep_range) kept_.reset();
        fn_.reset();
    }

    void invoke_callbacks() override {
        auto cb = std::move(callback_);
        auto ecb = std::move(error_callback_);
        if (this->outcome() == outcome_value) {
            if (cb) cb(this->value());
        } else if (ecb) {
            ecb(this->error_);
        }
    }

    std::optional<Fn> fn_;  // released with the inputs once no chunk can run any more
    Function<void(const std::vector<Item>&)> callback_;
    Function<void(std::exception_ptr)> error_callback_;
    std::optional<Kept> kept_;
    std::vector<Stored> inputs_;
    std::conditional_t<direct_in, Stored, char*> in_data_ = nullptr;  // direct_in: the input
    std::size_t in_size_ = 0;
    std::vector<Item> outv_;  // direct_out: the results, moved into value_ at the end
    Item* out_ = nullptr;
    std::unique_ptr<bool[]> ok_;  // which outputs were constructed (non-trivial Item only)
    bool all_ok_ = false;
    std::unique_ptr<Chunk[]> chunks_;
    std::size_t nchunks_ = 0;
    std::atomic<std::size_t> remaining_{0};
    std::atomic<bool> partial_cancel_{false};
    std::mutex fail_m_;
    std::size_t fail_index_ = npos;  // guarded by fail_m_ until the last chunk
    std::exception_ptr fail_error_;
};

/// Starts a map_async/starmap_async of f over r: reads the input, submits the chunks.
template <bool Star, bool Blocking, class Item, class F, class R>
MapResult<Item> start_map(PoolCore& pool, F&& f, R&& r, MapOptions<Item>&& o) {
    using Traits = InputTraits<R, false, Blocking>;
    using S = MapState<Item, std::decay_t<F>, Traits, Star>;
    pool.check_accepting();  // Python checks before reading the input
    auto* s = new S(&pool, std::forward<F>(f), std::forward<R>(r), std::move(o));
    MapResult<Item> handle{StateRef<ResultState<std::vector<Item>>>(s)};
    try {
        s->launch();
    } catch (...) {
        s->release();  // the chunks' reference; the handle frees the state
        throw;
    }
    return handle;
}

/// map/starmap: the same, waiting for the vector (a worker of the pool helps meanwhile).
template <bool Star, class Item, class F, class R>
std::vector<Item> run_map(PoolCore& pool, F&& f, R&& r, std::size_t chunksize) {
    MapOptions<Item> o;
    o.chunksize = chunksize;
    return start_map<Star, true, Item>(pool, std::forward<F>(f), std::forward<R>(r), std::move(o))
        .get();
}

}  // namespace pypool::detail
