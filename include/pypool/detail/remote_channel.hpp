#pragma once
// Internal: the seam between ProcessPool's front (process.hpp, process_wire.hpp: member
// templates, RemoteFn, chunk runners, the cereal wire) and how a call reaches its worker.
//
// Every remote call of a pool's proxy thread goes through detail::process_call(entry, fn,
// args). By default that is the ProcessPool's own socket channel to its worker process; a
// proxy thread that has a RemoteChannel bound (set_thread_remote_channel) sends its calls
// through it instead: that is all another pool kind (pypool::mpi::Executor: MPI ranks)
// adds to the shared front.

#include <cstddef>
#include <string>

#include <pypool/detail/process_wire.hpp>

namespace pypool::detail {

/// One proxy thread's way to its worker: sends a call, returns the worker's reply bytes.
class RemoteChannel {
public:
    /// Runs entry(fn, args) in the worker and returns the reply bytes it wrote (a status
    /// byte, then the result or exception). Throws RunCancelled (terminate()) or an
    /// error of the transport.
    virtual std::string call(RemoteEntry entry, const void* fn, std::string&& args) = 0;

protected:
    RemoteChannel() = default;
    RemoteChannel(const RemoteChannel&) = default;
    RemoteChannel& operator=(const RemoteChannel&) = default;
    ~RemoteChannel() = default;
};

/// Binds the calling thread's remote calls to c (nullptr: back to ProcessPool's own).
void set_thread_remote_channel(RemoteChannel* c) noexcept;
/// The channel bound to the calling thread, or nullptr.
RemoteChannel* thread_remote_channel() noexcept;

/// Sender side: the message that names (entry, fn) for the worker, followed by args.
/// Throws SerializationError if a code address is in no loaded module.
std::string encode_remote_call(RemoteEntry entry, const void* fn, const std::string& args);
/// Worker side: resolves and runs a message encode_remote_call made, appending the reply
/// (status byte, result or exception) to out. Never throws.
void run_remote_call(const char* data, std::size_t size, std::string& out) noexcept;

}  // namespace pypool::detail
