// The remote-channel seam (include/pypool/detail/remote_channel.hpp): the thread's bound
// channel and the (entry, fn, args) message other transports carry (the same code
// references as ProcessPool's own task frames).
#include <pypool/detail/remote_channel.hpp>
#include <pypool/process.hpp>

#include "process/internal.hpp"

namespace pypool::detail {

namespace {
thread_local RemoteChannel* tls_channel = nullptr;
}  // namespace

void set_thread_remote_channel(RemoteChannel* c) noexcept { tls_channel = c; }
RemoteChannel* thread_remote_channel() noexcept { return tls_channel; }

std::string encode_remote_call(RemoteEntry entry, const void* fn, const std::string& args) {
    std::string out;
    append_code_ref(out, reinterpret_cast<const void*>(entry));
    append_code_ref(out, fn);
    out += args;
    return out;
}

void run_remote_call(const char* data, std::size_t size, std::string& out) noexcept {
    try {
        Reader r{data, data + size};
        std::string error;
        const void* entry = read_code_ref(r, error);
        const void* fn = error.empty() ? read_code_ref(r, error) : nullptr;
        if (!error.empty() || !entry) {
            out.push_back(reply_serialization);
            out += "cannot find the task's function in the worker: " +
                   (error.empty() ? std::string("no entry") : error);
            return;
        }
        auto e = reinterpret_cast<RemoteEntry>(const_cast<void*>(entry));
        e(fn, r.p, end_of(r), out);
    } catch (...) {
        // Out of memory building the message: report what can be reported.
        try {
            out.push_back(reply_serialization);
            out += "out of memory in the worker";
        } catch (...) {
        }
    }
}

}  // namespace pypool::detail
