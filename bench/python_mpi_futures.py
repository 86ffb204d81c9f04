#!/usr/bin/env python3
"""The mpi-bench workloads (bench/mpi_bench.cpp) on mpi4py.futures' MPICommExecutor (Debian's
python3-mpi4py), on the ranks of `mpirun -n N`:
    M1 submit + result of N trivial tasks (tasks/s)
    M2 one task's round trip, one at a time (p50, p99 us)
    M3 map over 1,000,000 ints, chunksize as pypool's default: ceil(n / (4 * workers)) (s)
Prints "RESULT <workload> mpi4py <metric> <value>" lines.

usage: mpirun -n 3 /usr/bin/python3 python_mpi_futures.py [--smoke] [--scale F]
"""
import argparse
import math
import time

from mpi4py import MPI
from mpi4py.futures import MPICommExecutor


def trivial(x):
    return x + 1


def square(x):
    return x * x


def result(w, metric, value):
    print(f"RESULT {w} mpi4py {metric} {value:.6g}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--scale", type=float, default=1.0)
    a = p.parse_args()

    def n_of(full, small):
        return small if a.smoke else max(1, round(full * a.scale))

    with MPICommExecutor(MPI.COMM_WORLD, root=0) as ex:
        if ex is None:
            return
        workers = MPI.COMM_WORLD.Get_size() - 1
        n1 = n_of(20_000, 1000)  # fewer than mpi-bench: the rate is per task
        t0 = time.perf_counter()
        fs = [ex.submit(trivial, i) for i in range(n1)]
        total = sum(f.result() for f in fs)
        s1 = time.perf_counter() - t0
        assert total == n1 * (n1 + 1) // 2
        result("M1", "tasks_per_s", n1 / s1)
        n2 = n_of(5_000, 200)
        us = []
        for i in range(n2):
            t = time.perf_counter()
            assert ex.submit(trivial, i).result() == i + 1
            us.append((time.perf_counter() - t) * 1e6)
        us.sort()
        result("M2", "p50_us", us[len(us) // 2])
        result("M2", "p99_us", us[len(us) * 99 // 100])
        n3 = n_of(1_000_000, 10_000)
        items = [i % 1000 for i in range(n3)]
        t0 = time.perf_counter()
        out = list(ex.map(square, items, chunksize=math.ceil(n3 / (4 * workers))))
        s3 = time.perf_counter() - t0
        assert out[:1000] == [i * i for i in range(1000)] and len(out) == n3
        result("M3", "time_s", s3)


if __name__ == "__main__":
    main()
