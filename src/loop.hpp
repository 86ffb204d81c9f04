#pragma once
// The callback thread: one Boost.Asio io_context run by one thread per pool.
#include <utility>  // before Asio: Boost 1.74's headers miss it in C++20 mode

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <thread>

#include <pypool/detail/pool_core.hpp>

namespace pypool::detail {

struct Loop {
    boost::asio::execution_context worker_ctx;  // context of pypool::worker_executor
    boost::asio::io_context ioc{1};
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
        ioc.get_executor()};
    std::thread thread;
};

/// Names the calling thread "<prefix><suffix>", cutting the prefix to fit Linux's 15 bytes.
void set_thread_name(const std::string& prefix, const std::string& suffix) noexcept;

}  // namespace pypool::detail
