#pragma once
/// @file
/// The umbrella header: everything in pypool except the Boost.Asio integration
/// (<pypool/asio.hpp>).

#include <pypool/errors.hpp>
#include <pypool/function.hpp>
#include <pypool/futures.hpp>
#include <pypool/map.hpp>
#include <pypool/options.hpp>
#include <pypool/pool.hpp>
#include <pypool/process.hpp>
#include <pypool/result.hpp>
#include <pypool/version.hpp>
