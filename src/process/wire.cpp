// ProcessPool: naming code across processes (module, offset, build-id), exceptions across
// the boundary, serialization errors.
#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <unordered_map>

#include <pypool/process.hpp>

#include "process/internal.hpp"

namespace pypool::detail {

std::string demangle(const char* mangled) {
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> p(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                             std::free);
    return status == 0 && p ? std::string(p.get()) : std::string(mangled);
}

// ---- code references ------------------------------------------------------------------------

namespace {

std::string build_id_of(const dl_phdr_info* info) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_NOTE) continue;
        const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
        const char* end = p + ph.p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            ElfW(Nhdr) nh;
            std::memcpy(&nh, p, sizeof nh);
            const char* name = p + sizeof nh;
            const char* desc = name + ((nh.n_namesz + 3) & ~3U);
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0 &&
                desc + nh.n_descsz <= end)
                return std::string(desc, nh.n_descsz);
            p = desc + ((nh.n_descsz + 3) & ~3U);
        }
    }
    return {};
}

struct Module {
    std::string name;  // "" for the main program
    std::uintptr_t bias = 0;
    std::string build_id;
    bool found = false;
};

// The module whose loaded segments contain addr.
Module module_of(const void* addr) {
    struct Ctx {
        std::uintptr_t a;
        Module m;
    } ctx{reinterpret_cast<std::uintptr_t>(addr), {}};
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) -> int {
            auto* c = static_cast<Ctx*>(data);
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr)& ph = info->dlpi_phdr[i];
                if (ph.p_type != PT_LOAD) continue;
                const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
                if (c->a >= lo && c->a < lo + ph.p_memsz) {
                    c->m.name = info->dlpi_name ? info->dlpi_name : "";
                    c->m.bias = info->dlpi_addr;
                    c->m.build_id = build_id_of(info);
                    c->m.found = true;
                    return 1;
                }
            }
            return 0;
        },
        &ctx);
    return ctx.m;
}

Module module_named(const std::string& name) {
    struct Ctx {
        const std::string* n;
        Module m;
        bool first = true;
    } ctx{&name, {}};
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) -> int {
            auto* c = static_cast<Ctx*>(data);
            const char* n = info->dlpi_name ? info->dlpi_name : "";
            const bool main_program = c->first;
            c->first = false;
            if (c->n->empty() ? main_program : *c->n == n) {
                c->m.name = n;
                c->m.bias = info->dlpi_addr;
                c->m.build_id = build_id_of(info);
                c->m.found = true;
                return 1;
            }
            return 0;
        },
        &ctx);
    return ctx.m;
}

void put_u32(std::string& out, std::uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void put_u64(std::string& out, std::uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
void put_str(std::string& out, const std::string& s) {
    put_u32(out, static_cast<std::uint32_t>(s.size()));
    out += s;
}

}  // namespace

bool Reader::u32(std::uint32_t& v) noexcept {
    if (end - p < 4) return false;
    std::memcpy(&v, p, 4);
    p += 4;
    return true;
}
bool Reader::u64(std::uint64_t& v) noexcept {
    if (end - p < 8) return false;
    std::memcpy(&v, p, 8);
    p += 8;
    return true;
}
bool Reader::str(std::string& s) {
    std::uint32_t n = 0;
    if (!u32(n) || static_cast<std::size_t>(end - p) < n) return false;
    s.assign(p, n);
    p += n;
    return true;
}

void append_code_ref(std::string& out, const void* addr) {
    if (!addr) {
        put_u32(out, 0xFFFFFFFFU);  // no code
        return;
    }
    // A few recent names per thread (a proxy ships the same entry again and again), then
    // the process-wide cache.
    struct Recent {
        const void* addr = nullptr;
        std::string enc;
    };
    static thread_local Recent recent[4];
    static thread_local unsigned next_recent = 0;
    for (const Recent& r : recent) {
        if (r.addr == addr) {
            out += r.enc;
            return;
        }
    }
    static std::mutex m;
    static std::unordered_map<const void*, std::string> cache;
    auto remember = [&](const std::string& enc) {
        Recent& r = recent[next_recent++ % 4];
        r.addr = addr;
        r.enc = enc;
    };
    {
        std::lock_guard lk(m);
        auto it = cache.find(addr);
        if (it != cache.end()) {
            out += it->second;
            remember(it->second);
            return;
        }
    }
    const Module mod = module_of(addr);
    if (!mod.found) throw SerializationError("cannot name the callable for another process: its address is in no loaded module");
    std::string enc;
    put_str(enc, mod.name);
    put_u64(enc, reinterpret_cast<std::uintptr_t>(addr) - mod.bias);
    put_str(enc, mod.build_id);
    {
        std::lock_guard lk(m);
        cache.emplace(addr, enc);
    }
    remember(enc);
    out += enc;
}

const void* read_code_ref(Reader& r, std::string& error) {
    const char* start = r.p;
    std::uint32_t n = 0;
    if (end_of(r) < 4) {
        error = "truncated message";
        return nullptr;
    }
    std::memcpy(&n, r.p, 4);
    if (n == 0xFFFFFFFFU) {
        r.p += 4;
        return nullptr;
    }
    std::string name, id;
    std::uint64_t off = 0;
    if (!r.str(name) || !r.u64(off) || !r.str(id)) {
        error = "truncated message";
        return nullptr;
    }
    // Cache by the encoded reference (the worker is single-threaded).
    static std::unordered_map<std::string, const void*> cache;
    std::string key(start, static_cast<std::size_t>(r.p - start));
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    const Module mod = module_named(name);
    if (!mod.found) {
        error = "the worker has no module '" + (name.empty() ? std::string("<main program>") : name) + "'";
        return nullptr;
    }
    if (mod.build_id != id) {
        error = "the worker runs a different build of '" +
                (name.empty() ? std::string("<main program>") : name) + "' (GNU build-id differs)";
        return nullptr;
    }
    const void* a = reinterpret_cast<const void*>(mod.bias + off);
    cache.emplace(std::move(key), a);
    return a;
}

// ---- exceptions ---------------------------------------------------------------------------

void encode_current_exception(std::string& out) noexcept {
    try {
        const std::type_info* t = abi::__cxa_current_exception_type();
        std::string type = t ? demangle(t->name()) : std::string("unknown");
        std::string what;
        std::uint32_t is_std = 0;
        try {
            throw;
        } catch (const std::exception& e) {
            what = e.what();
            is_std = 1;
        } catch (...) {
        }
        put_str(out, type);
        put_str(out, what);
        put_u32(out, is_std);
    } catch (...) {
        // out of memory while describing it: the parent decodes a truncated message
    }
}

namespace {
using Factory = std::exception_ptr (*)(const std::string&);
std::mutex& factories_mutex() {
    static std::mutex m;
    return m;
}
std::unordered_map<std::string, Factory>& factories() {
    static std::unordered_map<std::string, Factory> f;
    return f;
}

template <class E>
[[noreturn]] void throw_as(const std::string& w) {
    throw E(w);
}
}  // namespace

void register_exception_factory(const std::type_info& type, Factory make) {
    std::lock_guard lk(factories_mutex());
    factories()[demangle(type.name())] = make;
}

void throw_remote_exception(const char* data, std::size_t size) {
    Reader r{data, data + size};
    std::string type, what;
    std::uint32_t is_std = 0;
    if (!r.str(type) || !r.str(what) || !r.u32(is_std))
        throw SerializationError("cannot decode the exception the task threw (truncated reply)");
    {
        Factory f = nullptr;
        {
            std::lock_guard lk(factories_mutex());
            auto it = factories().find(type);
            if (it != factories().end()) f = it->second;
        }
        if (f) std::rethrow_exception(f(what));
    }
    if (type == "std::runtime_error") throw_as<std::runtime_error>(what);
    if (type == "std::logic_error") throw_as<std::logic_error>(what);
    if (type == "std::invalid_argument") throw_as<std::invalid_argument>(what);
    if (type == "std::domain_error") throw_as<std::domain_error>(what);
    if (type == "std::length_error") throw_as<std::length_error>(what);
    if (type == "std::out_of_range") throw_as<std::out_of_range>(what);
    if (type == "std::range_error") throw_as<std::range_error>(what);
    if (type == "std::overflow_error") throw_as<std::overflow_error>(what);
    if (type == "std::underflow_error") throw_as<std::underflow_error>(what);
    if (type == "std::bad_alloc") throw std::bad_alloc();
    if (type == "pypool::TimeoutError") throw_as<TimeoutError>(what);
    if (type == "pypool::ValueError") throw_as<ValueError>(what);
    if (type == "pypool::RuntimeError") throw_as<RuntimeError>(what);
    if (type == "pypool::CancelledError") throw_as<CancelledError>(what);
    if (type == "pypool::DeadlockError") throw_as<DeadlockError>(what);
    if (type == "pypool::SerializationError") throw_as<SerializationError>(what);
    if (type == "pypool::BrokenProcessPool") throw_as<BrokenProcessPool>(what);
    throw RemoteError(type, what);
}

void throw_worker_serialization_error(const char* data, std::size_t size) {
    throw SerializationError(data && size ? std::string(data, size) : std::string("empty reply from the worker"));
}

void throw_serialization_error(const char* what, const std::type_info& type) {
    std::string msg = what;
    msg += " (";
    msg += demangle(type.name());
    msg += ")";
    if (std::exception_ptr e = std::current_exception()) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            msg += ": ";
            msg += x.what();
        } catch (...) {
        }
    }
    throw SerializationError(msg);
}

}  // namespace pypool::detail
