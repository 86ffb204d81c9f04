#pragma once
// Internal: the stream behind an IMapIterator (imap/imap_unordered).
//
// A stream is reference counted: the iterator holds one reference, each submitted chunk
// one, and the pool one while the stream is registered (StreamHook). Its mutex guards the
// delivery state; reading the input happens outside the mutex under the `reading_` flag,
// so the input is never read by two threads at once (the consumer refilling, or join()
// draining), while workers can still publish finished chunks.
//
// Delivery: chunks are linked in submission order (all_); imap delivers from its head,
// imap_unordered from the FIFO of finished chunks (ready_). Each item has its own slot
// (value or exception). When the last item of a chunk has been handed out, the chunk is
// owed; once refill_at chunks are owed they are read and submitted as one batch. With a
// max_in_flight the user chose, refill_at is 1: while input remains exactly max_in_flight
// chunks are submitted but not consumed. With the pool's pick (64 * size(), refilled 32 *
// size() at a time) the consumer and the workers meet once per batch, not once per item.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <ranges>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <pypool/detail/intrusive.hpp>
#include <pypool/detail/pool_core.hpp>
#include <pypool/detail/spin.hpp>
#include <pypool/detail/state.hpp>
#include <pypool/errors.hpp>
#include <pypool/map.hpp>
#include <pypool/options.hpp>

namespace pypool::detail {

/// One item's outcome inside a chunk: a value constructed in place, or an exception.
template <class Item>
struct ImapSlot {
    alignas(Item) unsigned char buf[sizeof(Item)];
    std::exception_ptr err;
    bool has_value = false;
    Item& value() noexcept { return *std::launder(reinterpret_cast<Item*>(buf)); }
    void reset() noexcept {
        if (has_value) {
            value().~Item();
            has_value = false;
        }
        err = nullptr;
    }
};

template <class Item>
class ImapStreamBase;

/// A chunk of an imap: one Job, up to chunksize items. Reused once consumed. Its storage
/// grows with the items actually read (never chunksize slots up front: a huge chunksize
/// over a short input costs what the input holds).
template <class Item>
class ImapChunkBase : public Job {
public:
    explicit ImapChunkBase(ImapStreamBase<Item>* s) noexcept : stream_(s) {}
    virtual ~ImapChunkBase() { reset_slots(); }
    ImapChunkBase(const ImapChunkBase&) = delete;
    ImapChunkBase& operator=(const ImapChunkBase&) = delete;

    /// Destroys undelivered values and clears the inputs.
    void reset_slots() noexcept {
        for (std::size_t i = pos_; i < count_; ++i) slots_[i].reset();
        pos_ = count_ = 0;
    }
    /// Room for one more item's slot (the reader calls it before adding item count_):
    /// grows the slot array geometrically up to max_items. Only while the chunk is being
    /// read, when no slot holds anything. Throws std::bad_alloc.
    void reserve_slot(std::size_t max_items) {
        if (count_ < slot_capacity_) return;
        const std::size_t cap = std::min(max_items, std::max<std::size_t>(8, 2 * slot_capacity_));
        slots_.reset(new ImapSlot<Item>[cap]);
        slot_capacity_ = cap;
    }
    virtual void clear_inputs() noexcept = 0;

    ImapStreamBase<Item>* stream_;
    std::atomic<std::uint8_t> status_{0};  // 0 queued, 1 running, 2 cancelled while queued
    std::unique_ptr<ImapSlot<Item>[]> slots_;  // slot_capacity_ slots, count_ in use
    std::size_t slot_capacity_ = 0;
    std::size_t count_ = 0;  // items in the chunk (written by the reader before submission)
    // Guarded by the stream's mutex:
    std::size_t pos_ = 0;  // next item to deliver
    // Ran (or was cancelled) and published: set under the stream's mutex, except by a
    // worker publishing an ordered imap's chunk (release; read under the mutex, acquire).
    std::atomic<bool> done_{false};
    bool cancelled_ = false;
    ImapChunkBase* all_prev_ = nullptr;  // submitted, unconsumed chunks (submission order)
    ImapChunkBase* all_next_ = nullptr;
    ImapChunkBase* ready_next_ = nullptr;  // ready_ FIFO (imap_unordered) or free list
};

/// The delivery side of a stream (depends only on Item); the input and the function live
/// in the derived ImapStream.
template <class Item>
class ImapStreamBase : public StreamHook {
    using Chunk = ImapChunkBase<Item>;

public:
    /// refill_at: consumed chunks that trigger reading more (1: exactly max_in_flight in
    /// flight; more: refilled in batches, fewer hand-offs).
    ImapStreamBase(PoolCore* pool, std::size_t chunksize, std::size_t max_in_flight,
                   std::size_t refill_at, bool ordered) noexcept
        : pool_(pool),
          chunksize_(chunksize),
          max_in_flight_(max_in_flight),
          refill_at_(refill_at),
          ordered_(ordered) {}

    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    /// Registers with the pool (throws if it accepts no work) and submits the first chunks.
    void start() {
        registered_ = true;  // before the pool can see it (join() may drain it at once)
        try {
            pool_->add_stream(this);  // takes the pool's reference
        } catch (...) {
            registered_ = false;
            throw;
        }
        std::unique_lock lk(m_);
        owed_ = max_in_flight_;
        refill(lk);
    }

    /// The consumer: the next item (nullopt at the end); see IMapIterator::next().
    std::optional<Item> fetch(std::optional<Clock::time_point> deadline) {
        std::unique_lock lk(m_);
        for (;;) {
            if (cur_ || pick()) {
                ImapSlot<Item>& s = cur_->slots_[cur_->pos_++];
                std::optional<Item> val;
                std::exception_ptr err;
                if (s.has_value) {
                    try {
                        val.emplace(std::move(s.value()));
                    } catch (...) {
                        err = std::current_exception();
                    }
                    s.value().~Item();
                    s.has_value = false;
                } else {
                    err = std::move(s.err);
                    s.err = nullptr;
                }
                if (cur_->pos_ == cur_->count_) {  // consumed: read and submit one more chunk
                    Chunk* c = std::exchange(cur_, nullptr);
                    unlink(c);
                    recycle(c);
                    if (++owed_ >= refill_at_) refill(lk);
                }
                if (err) std::rethrow_exception(err);
                return val;
            }
            if (!head_ && !reading_) {  // nothing in flight: the end (or its errors)
                if (owed_ > 0 && can_read()) {
                    refill(lk);
                    continue;
                }
                if (input_error_) std::rethrow_exception(std::exchange(input_error_, nullptr));
                if ((lost_ || !input_done_) && !cancel_delivered_) {
                    cancel_delivered_ = true;
                    throw CancelledError("imap: items were cancelled or left unread by terminate()");
                }
                return std::nullopt;
            }
            if (deadline && Clock::now() >= *deadline)
                throw TimeoutError("no imap result arrived within the timeout");
            wait(lk, deadline);
        }
    }

    /// The iterator goes away: cancel queued chunks, wait for running ones and for a read
    /// in progress, unregister. Then drops the iterator's reference.
    void abandon() noexcept {
        {
            std::unique_lock lk(m_);
            abandoned_ = true;
            parked_.fetch_add(1, std::memory_order_seq_cst);  // finishing chunks notify us
            for (;;) {
                // seq_cst, as the finishing worker's increment: if that came before this
                // read, its done_ is visible to the scan below; if after, the wait sees it
                const std::uint64_t seen = events_.load(std::memory_order_seq_cst);
                collect_ready();
                bool running = false;
                for (Chunk* c = head_; c; c = c->all_next_) {
                    std::uint8_t e = 0;
                    if (c->status_.compare_exchange_strong(e, 2, std::memory_order_acq_rel))
                        pool_->note_cancelled();  // leaves `queued` now (units keep the pool)
                    else if (e == 1 && !c->done_.load(std::memory_order_acquire))
                        running = true;
                }
                if (!running && !reading_) break;
                cv_.wait(lk, [&] { return events_.load(std::memory_order_seq_cst) != seen; });
            }
            parked_.fetch_sub(1, std::memory_order_relaxed);
            unregister_locked();
        }
        release();
    }

    // ---- StreamHook ---------------------------------------------------------------------
    void drain_for_join() override {
        std::unique_lock lk(m_);
        for (;;) {
            cv_.wait(lk, [&] { return !reading_; });
            if (!can_read()) return;
            read_batch(lk, refill_at_);
        }
    }
    void on_terminate() noexcept override { terminated_.store(true, std::memory_order_release); }
    void on_detach() noexcept override {
        std::unique_lock lk(m_);
        cv_.wait(lk, [&] { return !reading_; });
        registered_ = false;  // the pool may go away: never touch it again
        events_.fetch_add(1, std::memory_order_seq_cst);
        cv_.notify_all();
    }
    void hook_add_ref() noexcept override { add_ref(); }
    void hook_release() noexcept override { release(); }

    /// A worker ran (ran = true) or skipped/discarded c: publish it. The chunk's reference
    /// to the stream and its unit of work are released here.
    void chunk_finished(Chunk* c, bool ran) noexcept {
        PoolCore* pool = pool_;
        if (ran) {
            // Publish without the stream's lock (the consumer holds it for most of every
            // item): imap sets c's done_ flag (pick() reads it at the head, in order),
            // imap_unordered pushes c on ready_stack_ (collect_ready() moves it to the ready
            // FIFO under m_). Then wake the consumer only if it parked: parked_ and events_
            // are read and written seq_cst on both sides, so either the waiter sees the new
            // event or we see it parked. c is not touched after it is published.
            if (ordered_) {
                c->done_.store(true, std::memory_order_release);
            } else {
                Chunk* old = ready_stack_.load(std::memory_order_relaxed);
                do {
                    c->ready_next_ = old;
                } while (!ready_stack_.compare_exchange_weak(old, c, std::memory_order_seq_cst,
                                                             std::memory_order_relaxed));
            }
            events_.fetch_add(1, std::memory_order_seq_cst);
            if (parked_.load(std::memory_order_seq_cst) > 0) {
                { std::lock_guard lk(m_); }  // the waiter checked under m_: it waits by now
                cv_.notify_all();
            }
        } else {
            {
                std::lock_guard lk(m_);
                c->done_.store(true, std::memory_order_relaxed);
                c->cancelled_ = !ran;
                if (!ran && !abandoned_) stopped_ = true;  // terminate()/shutdown cancelled it
                if (!ordered_) {
                    c->ready_next_ = nullptr;
                    if (rtail_)
                        rtail_->ready_next_ = c;
                    else
                        rhead_ = c;
                    rtail_ = c;
                }
                events_.fetch_add(1, std::memory_order_seq_cst);
            }
            cv_.notify_all();
        }
        if (helper_waiting_.load(std::memory_order_seq_cst)) pool->notify_helpers();
        pool->release_unit();
        release();
    }

    StreamHook* hook() noexcept { return this; }

protected:
    virtual ~ImapStreamBase() {
        free_list(head_, false);
        for (Chunk* c = free_; c;) {
            Chunk* n = c->ready_next_;
            delete c;
            c = n;
        }
    }
    /// A new empty chunk (its storage grows as items are read, up to chunksize_ items).
    virtual Chunk* new_chunk() = 0;
    /// Reads up to chunksize_ items into c (c->count_); true if the input is exhausted.
    /// Throws what reading the input threw (c->count_ then holds the items read before).
    virtual bool read_into(Chunk* c) = 0;

    PoolCore* pool_;
    const std::size_t chunksize_;
    const std::size_t max_in_flight_;
    const std::size_t refill_at_;

private:
    static void free_list(Chunk* c, bool) noexcept {
        while (c) {
            Chunk* n = c->all_next_;
            delete c;
            c = n;
        }
    }
    bool can_read() const noexcept {
        return !reading_ && !input_done_ && !stopped_ && !abandoned_ && registered_ &&
               !terminated_.load(std::memory_order_acquire);
    }
    // The next finished chunk to deliver (cancelled ones are dropped); true if cur_ set.
    bool pick() noexcept {
        for (;;) {
            Chunk* c = nullptr;
            if (ordered_) {
                if (!head_ || !head_->done_.load(std::memory_order_acquire)) return false;
                c = head_;
            } else {
                if (!rhead_) collect_ready();
                if (!rhead_) return false;
                c = rhead_;
                rhead_ = c->ready_next_;
                if (!rhead_) rtail_ = nullptr;
            }
            if (c->cancelled_ || c->count_ == 0) {
                if (c->cancelled_) lost_ = true;
                unlink(c);
                recycle(c);
                continue;
            }
            cur_ = c;
            return true;
        }
    }
    // Moves the chunks workers published lock-free (imap_unordered) to the ready FIFO,
    // oldest first, marking them done. m_ held.
    void collect_ready() noexcept {
        if (!ready_stack_.load(std::memory_order_seq_cst)) return;
        Chunk* fifo = reverse_list(ready_stack_.exchange(nullptr, std::memory_order_seq_cst),
                                   &Chunk::ready_next_);
        while (fifo) {
            Chunk* next = fifo->ready_next_;
            fifo->done_.store(true, std::memory_order_relaxed);
            fifo->cancelled_ = false;
            fifo->ready_next_ = nullptr;
            if (rtail_)
                rtail_->ready_next_ = fifo;
            else
                rhead_ = fifo;
            rtail_ = fifo;
            fifo = next;
        }
    }
    void unlink(Chunk* c) noexcept {
        if (c->all_prev_)
            c->all_prev_->all_next_ = c->all_next_;
        else
            head_ = c->all_next_;
        if (c->all_next_)
            c->all_next_->all_prev_ = c->all_prev_;
        else
            tail_ = c->all_prev_;
        c->all_prev_ = c->all_next_ = nullptr;
    }
    void recycle(Chunk* c) noexcept {
        c->reset_slots();
        c->clear_inputs();
        c->done_.store(false, std::memory_order_relaxed);
        c->cancelled_ = false;
        c->status_.store(0, std::memory_order_relaxed);
        c->ready_next_ = free_;
        free_ = c;
    }
    void refill(std::unique_lock<std::mutex>& lk) {
        while (owed_ > 0 && can_read())
            owed_ -= read_batch(lk, owed_);  // at most refill_at_ per batch; the rest stays owed
        if (terminated_.load(std::memory_order_acquire)) stopped_ = true;
    }
    // Reads up to `count` chunks outside the lock, then links and submits those that got
    // items as one batch (one hand-off to the pool, one wake-up). Chunks come from free_,
    // else are made as the reading needs them, so a short input costs what it holds. The
    // batch is at most refill_at_ chunks: with a max_in_flight the user chose, one, so each
    // chunk is submitted before the next is read (an input that waits for what earlier
    // items produce needs that). Returns the chunks submitted (or rejected by terminate()).
    // Lock held on entry and exit.
    std::size_t read_batch(std::unique_lock<std::mutex>& lk, std::size_t count) {
        count = std::min(count, refill_at_);
        Chunk* spare = nullptr;  // chunks taken from free_, linked through ready_next_
        for (std::size_t k = 0; k < count && free_; ++k) {
            Chunk* c = free_;
            free_ = c->ready_next_;
            c->ready_next_ = spare;
            spare = c;
        }
        reading_ = true;
        lk.unlock();
        // Read in order until the input ends or throws; only this thread sees these chunks.
        std::exception_ptr err;
        bool exhausted = false;
        Chunk* first = nullptr;  // the chunks that got items, linked through all_next_
        Chunk* last = nullptr;
        std::size_t n = 0;
        while (n < count && !exhausted && !err && !terminated_.load(std::memory_order_acquire)) {
            Chunk* c = spare;
            if (c) {
                spare = c->ready_next_;
                c->ready_next_ = nullptr;
            } else {
                try {
                    c = new_chunk();
                } catch (...) {
                    if (n == 0) err = std::current_exception();
                    break;  // submit what was read
                }
            }
            try {
                exhausted = read_into(c);
            } catch (...) {
                err = std::current_exception();
            }
            if (c->count_ == 0) {
                c->ready_next_ = spare;  // back with the unused ones
                spare = c;
                break;
            }
            c->all_prev_ = last;  // first's is set when the batch is linked
            c->all_next_ = nullptr;
            c->next_ = nullptr;
            if (last) {
                last->all_next_ = c;
                last->next_ = c;
            } else {
                first = c;
            }
            last = c;
            ++n;
        }
        lk.lock();
        reading_ = false;
        while (spare) {  // unused: back to the free list
            Chunk* c = spare;
            spare = c->ready_next_;
            c->count_ = 0;
            recycle(c);
        }
        if (n > 0) {
            // Link in submission order, then submit (the stream's lock may be held while
            // calling into the pool): a worker can finish a chunk only once it is linked.
            first->all_prev_ = tail_;
            if (tail_)
                tail_->all_next_ = first;
            else
                head_ = first;
            tail_ = last;
            refs_.fetch_add(n, std::memory_order_relaxed);  // one for each chunk
            try {
                pool_->submit_stream(first, last, n);
            } catch (...) {
                // rejected (terminate() came first): the items are lost
                refs_.fetch_sub(n, std::memory_order_relaxed);  // never the last one
                stopped_ = lost_ = true;
                for (Chunk* c = first; c;) {
                    Chunk* next = c->all_next_;
                    unlink(c);
                    c->count_ = 0;
                    recycle(c);
                    c = next;
                }
            }
        }
        if (err) {
            input_error_ = err;
            input_done_ = true;
        } else if (exhausted) {
            input_done_ = true;
        }
        if (input_done_) unregister_locked();
        events_.fetch_add(1, std::memory_order_seq_cst);
        cv_.notify_all();
        // still alive: a join() detaching us waits for reading_ == false under m_
        if (helper_waiting_.load(std::memory_order_seq_cst)) pool_->notify_helpers();
        return n;
    }
    // Leaves the pool's list (lock held: while registered_ the pool is alive).
    void unregister_locked() noexcept {
        if (!registered_) return;
        registered_ = false;
        if (pool_->remove_stream(this)) refs_.fetch_sub(1, std::memory_order_relaxed);
        // (never the last reference: the caller holds one)
    }
    struct HelpCtx {
        const ImapStreamBase* s;
        std::uint64_t seen;
    };
    static bool changed(const void* p) noexcept {
        const auto* c = static_cast<const HelpCtx*>(p);
        return c->s->events_.load(std::memory_order_seq_cst) != c->seen ||
               c->s->ready_stack_.load(std::memory_order_seq_cst) != nullptr;
    }
    // Something to look at since events_ was `seen`: a new event, or chunks published
    // lock-free (they may have counted their event before `seen` was read).
    bool changed_since(std::uint64_t seen) const noexcept {
        return events_.load(std::memory_order_seq_cst) != seen ||
               ready_stack_.load(std::memory_order_seq_cst) != nullptr;
    }
    // Waits for a change (lock held on entry and exit). A worker of the pool runs queued
    // jobs meanwhile, so waiting on a worker cannot starve the pool.
    void wait(std::unique_lock<std::mutex>& lk, std::optional<Clock::time_point> deadline) {
        // An ordered chunk published lock-free may have counted its event before `seen` was
        // read and after pick() looked at the head: look again (its done_ is visible once
        // its event is).
        const std::uint64_t seen = events_.load(std::memory_order_seq_cst);
        if (ordered_ && head_ && head_->done_.load(std::memory_order_acquire)) return;
        if (PoolCore::current_worker_pool() == pool_) {
            HelpCtx ctx{this, seen};
            helper_waiting_.store(true, std::memory_order_seq_cst);
            lk.unlock();
            try {
                pool_->help_while_not(&changed, &ctx, deadline);
            } catch (...) {
                lk.lock();
                helper_waiting_.store(false, std::memory_order_relaxed);
                throw;
            }
            lk.lock();
            helper_waiting_.store(false, std::memory_order_relaxed);
            return;
        }
        // Spin a few microseconds first (yielding the core to the workers): on a busy
        // stream the next chunk usually finishes sooner than a futex sleep/wake-up costs.
        // Chunks finished by workers (published without m_) notify when parked_ says someone
        // waits; every other event changes events_ under m_.
        lk.unlock();
        spin_while_unchanged(seen);
        lk.lock();
        if (changed_since(seen)) return;
        parked_.fetch_add(1, std::memory_order_seq_cst);  // see chunk_finished
        if (!changed_since(seen)) {
            if (deadline)
                cv_.wait_until(lk, *deadline);
            else
                cv_.wait(lk);
        }
        parked_.fetch_sub(1, std::memory_order_relaxed);
    }
    void spin_while_unchanged(std::uint64_t seen) const noexcept {
        spin_until([&] { return changed_since(seen); }, 128, 16);
    }

    std::atomic<std::uint32_t> refs_{1};  // the iterator's
    const bool ordered_;
    std::mutex m_;
    std::condition_variable cv_;
    // Guarded by m_:
    Chunk* head_ = nullptr;  // submitted, not consumed (submission order)
    Chunk* tail_ = nullptr;
    Chunk* rhead_ = nullptr;  // finished, not yet picked (imap_unordered)
    Chunk* rtail_ = nullptr;
    Chunk* free_ = nullptr;  // consumed chunks kept for reuse
    Chunk* cur_ = nullptr;   // being delivered
    std::size_t owed_ = 0;   // chunks to read and submit to get back to max_in_flight_
    bool reading_ = false;
    bool input_done_ = false;
    bool stopped_ = false;   // no more input is read (a chunk was cancelled or rejected)
    bool lost_ = false;      // items were cancelled
    bool abandoned_ = false;
    bool registered_ = false;
    bool cancel_delivered_ = false;
    std::exception_ptr input_error_;
    std::atomic<bool> terminated_{false};
    std::atomic<std::uint64_t> events_{0};
    std::atomic<bool> helper_waiting_{false};
    std::atomic<Chunk*> ready_stack_{nullptr};  // published lock-free, newest first
    std::atomic<int> parked_{0};                // threads waiting on cv_ for chunks
};

/// The stream of one imap/imap_unordered call: the function, the input and its chunks.
template <class Item, class Fn, class Traits, bool Star>
class ImapStream final : public ImapStreamBase<Item> {
    using Base = ImapStreamBase<Item>;
    using ChunkBase = ImapChunkBase<Item>;
    using Stored = typename Traits::Stored;
    using Iterated = typename Traits::Iterated;
    using Holder = std::conditional_t<Traits::owned, typename Traits::Rng, Iterated*>;
    using It = range_iterator_t<Iterated>;
    using Sent = range_sentinel_t<Iterated>;

    struct Chunk final : ChunkBase {
        explicit Chunk(ImapStream* s) noexcept : ChunkBase(s) {}
        std::vector<Stored> inputs;  // grows with the items read (capacity kept for reuse)

        void clear_inputs() noexcept override { inputs.clear(); }
        void run() noexcept override {
            auto* s = static_cast<ImapStream*>(this->stream_);
            std::uint8_t e = 0;
            if (!this->status_.compare_exchange_strong(e, 1, std::memory_order_acq_rel)) {
                s->chunk_finished(this, false);  // cancelled by the iterator's destruction
                return;
            }
            PoolCore* pool = s->pool_;
            pool->note_started();
            bool ok = true;
            if constexpr (requires { Fn::pypool_batch; }) {
                // A pool kind that ships the whole chunk at once (ProcessPool: one message).
                ok = s->fn_.template run_batch<Star, Item>(
                         this->count_,
                         [&](std::size_t k) -> decltype(auto) { return Traits::arg(inputs[k]); },
                         [&](std::size_t k, Item&& v) {
                             ::new (static_cast<void*>(this->slots_[k].buf)) Item(std::move(v));
                             this->slots_[k].has_value = true;
                         },
                         [&](std::size_t k, std::exception_ptr e) {
                             this->slots_[k].err = std::move(e);
                         }) == 0;
            } else {
                for (std::size_t i = 0; i < this->count_; ++i) {
                    ImapSlot<Item>& slot = this->slots_[i];
                    try {
                        if constexpr (std::is_same_v<Item, None> &&
                                      std::is_void_v<decltype(call_item<Star>(
                                          s->fn_, Traits::arg(inputs[i])))>) {
                            call_item<Star>(s->fn_, Traits::arg(inputs[i]));
                            ::new (static_cast<void*>(slot.buf)) None{};
                        } else {
                            ::new (static_cast<void*>(slot.buf))
                                Item(call_item<Star>(s->fn_, Traits::arg(inputs[i])));
                        }
                        slot.has_value = true;
                    } catch (...) {
                        slot.err = std::current_exception();
                        ok = false;
                    }
                }
            }
            inputs.clear();  // the pool keeps no reference to the arguments
            pool->note_ran();
            pool->note_outcome(ok);
            s->chunk_finished(this, true);
        }
        void discard() noexcept override {
            // counted unless the iterator's destruction cancelled (and counted) it first
            if (this->status_.exchange(2, std::memory_order_acq_rel) == 0)
                static_cast<ImapStream*>(this->stream_)->pool_->note_cancelled();
            this->stream_->chunk_finished(this, false);
        }
    };

public:
    template <class F, class R>
    ImapStream(PoolCore* pool, F&& f, R&& r, std::size_t chunksize, std::size_t max_in_flight,
               std::size_t refill_at, bool ordered)
        : Base(pool, chunksize, max_in_flight, refill_at, ordered),
          fn_(std::forward<F>(f)),
          range_(hold(std::forward<R>(r))) {}

private:
    template <class R>
    static Holder hold(R&& r) {
        if constexpr (Traits::owned)
            return Holder(std::forward<R>(r));
        else
            return std::addressof(r);
    }
    Iterated& range() noexcept {
        if constexpr (Traits::owned)
            return range_;
        else
            return *range_;
    }
    ChunkBase* new_chunk() override { return new Chunk(this); }
    bool read_into(ChunkBase* cb) override {
        auto* c = static_cast<Chunk*>(cb);
        c->count_ = 0;
        if (!it_) {
            it_.emplace(range_begin(range()));
            end_.emplace(range_end(range()));
        }
        It& it = *it_;
        while (c->count_ < this->chunksize_) {
            if (it == *end_) return true;
            c->reserve_slot(this->chunksize_);
            c->inputs.push_back(Traits::store(it));
            ++c->count_;
            ++it;
        }
        return it == *end_;
    }

    Fn fn_;
    Holder range_;
    std::optional<It> it_;  // set by the first read (the range is at its final address)
    std::optional<Sent> end_;
};

}  // namespace pypool::detail

namespace pypool {

template <class Item>
std::optional<Item> IMapIterator<Item>::fetch(std::optional<detail::Clock::time_point> deadline) {
    if (!s_) return std::nullopt;
    return s_->fetch(deadline);
}

template <class Item>
void IMapIterator<Item>::abandon() noexcept {
    current_.reset();
    if (auto* s = std::exchange(s_, nullptr)) s->abandon();
}

namespace detail {

/// Starts an imap/imap_unordered/(star) stream of f over r.
template <bool Star, class F, class R>
auto start_imap(PoolCore& pool, F&& f, R&& r, IMapOptions o, bool ordered) {
    using Traits = InputTraits<R, true, false>;
    using Item = bulk_item_t<F, R, Star, true, false>;
    if (o.chunksize == 0) throw ValueError("Chunksize must be 1+, not 0");
    pool.check_accepting();
    // max_in_flight 0: the pool's pick, 64 * size() chunks refilled in batches of half that
    // (so 32..64 * size() in flight while input remains): a worker finds the next chunk
    // queued, and the consumer hands chunks over 32 * size() at a time.
    const std::size_t mif = o.max_in_flight != 0 ? o.max_in_flight : 64 * pool.size();
    const std::size_t refill_at = o.max_in_flight != 0 ? 1 : mif / 2;
    auto* s = new ImapStream<Item, std::decay_t<F>, Traits, Star>(
        &pool, std::forward<F>(f), std::forward<R>(r), o.chunksize, mif, refill_at, ordered);
    IMapIterator<Item> it(s);  // destroys the stream if start() throws
    s->start();
    return it;
}

}  // namespace detail
}  // namespace pypool
