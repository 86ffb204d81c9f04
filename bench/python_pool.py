#!/usr/bin/env python3
"""The pypool-bench workloads on Python's multiprocessing.pool.ThreadPool(2) (W7b: on
concurrent.futures.ThreadPoolExecutor(2), where as_completed lives), with smaller N.

Prints the same lines as pypool-bench, library "python":
    RESULT <workload> python <metric> <value>
    NOTE   <workload> python <text>
Rates are per task, so they compare with pypool-bench's despite the smaller N.

usage: python_pool.py [--smoke] [--reps N] [--only W1,W3,...] [--scale F] [--idle-seconds S]
"""
import argparse
import concurrent.futures
import gc
import itertools
import os
import statistics
import sys
import threading
import time
from multiprocessing.pool import ThreadPool

args = None


def n_of(full, smoke):
    return smoke if args.smoke else max(1, round(full * args.scale))


def result(w, metric, value):
    print(f"RESULT {w} python {metric} {value:.6g}", flush=True)


def note(w, text):
    print(f"NOTE {w} python {text}", flush=True)


def check(ok, what):
    if not ok:
        raise AssertionError(what)


def make_pool():
    pool = ThreadPool(2)
    for r in [pool.apply_async(lambda: None) for _ in range(100)]:
        r.get()
    return pool


def double(x):
    return x * 2


def w1():
    n = n_of(50_000, 500)
    pool = make_pool()
    t0 = time.perf_counter()
    rs = [pool.apply_async(double, (i,)) for i in range(n)]
    total = sum(r.get() for r in rs)
    t = time.perf_counter() - t0
    pool.terminate()
    pool.join()
    check(total == n * (n - 1), "W1 sum")
    result("W1", "rate", n / t)


def w2():
    n = n_of(50_000, 500)
    counter = itertools.count()  # next() is atomic under the GIL
    pool = make_pool()
    t0 = time.perf_counter()
    for _ in range(n):
        pool.apply_async(counter.__next__)
    pool.close()
    pool.join()
    t = time.perf_counter() - t0
    check(next(counter) == n, "W2 count")
    result("W2", "rate", n / t)


def w3():
    n = n_of(5_000, 100)
    pool = make_pool()
    inc = lambda x: x + 1  # noqa: E731
    for i in range(200):
        check(pool.apply(inc, (i,)) == i + 1, "W3 value")
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        v = pool.apply(inc, (i,))
        lat.append(time.perf_counter() - t0)
        check(v == i + 1, "W3 value")
    pool.terminate()
    pool.join()
    lat.sort()
    result("W3", "p50_us", lat[min(n - 1, int(0.50 * n))] * 1e6)
    result("W3", "p99_us", lat[min(n - 1, int(0.99 * n))] * 1e6)


def trivial(x):
    return x * x + 1


SPIN = 10


def spin(x):
    h = x
    for _ in range(SPIN):
        h = (h * 1103515245 + 12345) & 0xFFFFFFFF
    return h


def calibrate_spin():
    global SPIN
    if args.smoke:
        SPIN = 2
        return
    SPIN = 100
    best = min(timeit_once(lambda: [spin(i) for i in range(2000)]) for _ in range(5)) / 2000
    SPIN = max(1, round(100 * 1e-6 / best))
    print(f"# W4b: python spin calibrated to {SPIN} iterations for ~1 us", flush=True)


def timeit_once(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def w4(name, f, n, inner):
    data = list(range(n))
    serial = float("inf")
    expect = None
    for _ in range(inner):
        t0 = time.perf_counter()
        expect = [f(x) for x in data]
        serial = min(serial, time.perf_counter() - t0)
    result(name, "serial_time_s", serial)
    pool = make_pool()
    best = float("inf")
    for _ in range(inner):
        t0 = time.perf_counter()
        out = pool.map(f, data)
        best = min(best, time.perf_counter() - t0)
        check(out == expect, f"{name} output")
    pool.terminate()
    pool.join()
    result(name, "speedup", serial / best)
    result(name, "time_s", best)


def w4a():
    w4("W4a", trivial, n_of(1_000_000, 1_000), 1 if args.smoke else 3)


def w4b():
    w4("W4b", spin, n_of(100_000, 500), 1)


def w5():
    n = n_of(20_000, 200)
    for variant in ("W5a", "W5b"):
        counter = itertools.count(1)
        done = threading.Event()
        pool = make_pool()

        def tick():
            if next(counter) == 2 * n:
                done.set()

        if variant == "W5a":
            def first():
                tick()
                return 1

            def callback(_):
                pool.apply_async(tick)

            t0 = time.perf_counter()
            for _ in range(n):
                pool.apply_async(first, callback=callback)
        else:
            def first():
                tick()
                pool.apply_async(tick)

            t0 = time.perf_counter()
            for _ in range(n):
                pool.apply_async(first)
        done.wait()
        t = time.perf_counter() - t0
        pool.close()
        pool.join()
        check(next(counter) == 2 * n + 1, f"{variant} count")
        result(variant, "rate", 2 * n / t)


def w6():
    note("W6", "deadlock (not run)")


def identity(x):
    return x


def w7():
    n = n_of(50_000, 500)
    expect = n * (n - 1) // 2
    pool = make_pool()
    t0 = time.perf_counter()
    total = sum(pool.imap_unordered(identity, range(n), 1))
    t = time.perf_counter() - t0
    pool.terminate()
    pool.join()
    check(total == expect, "W7a sum")
    result("W7a", "rate", n / t)

    # as_completed gets slower per task as N grows (23k/s at 20,000, 6k/s at 50,000 here):
    # 20,000 keeps the run short and flatters Python.
    n = n_of(20_000, 500)
    expect = n * (n - 1) // 2
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        for f in [ex.submit(lambda: None) for _ in range(100)]:
            f.result()
        t0 = time.perf_counter()
        fs = [ex.submit(identity, i) for i in range(n)]
        total = sum(f.result() for f in concurrent.futures.as_completed(fs))
        t = time.perf_counter() - t0
    check(total == expect, "W7b sum")
    result("W7b", "rate", n / t)


def w8():
    # imap with the default chunksize 1, ordered: what a porter's first line does
    n = n_of(100_000, 500)
    expect = n * (n - 1) // 2
    pool = make_pool()
    t0 = time.perf_counter()
    total = 0
    prev = -1
    ordered = True
    for x in pool.imap(identity, range(n)):
        ordered = ordered and x == prev + 1
        prev = x
        total += x
    t = time.perf_counter() - t0
    pool.terminate()
    pool.join()
    check(total == expect and ordered, "W8 sum and order")
    result("W8", "rate", n / t)


def idle():
    secs = 0.2 if args.smoke else args.idle_seconds
    pool = make_pool()
    time.sleep(0.05)
    c0, t0 = time.process_time(), time.perf_counter()
    time.sleep(secs)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    check(pool.apply(identity, (7,)) == 7, "IDLE pool still works")
    pool.terminate()
    pool.join()
    result("IDLE", "cpu_ms_per_s", cpu * 1000 / wall)


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def mem():
    n = n_of(100_000, 500)
    pool = make_pool()
    gate = threading.Event()
    started = threading.Semaphore(0)

    def blocked():
        started.release()
        gate.wait()

    for _ in range(2):
        pool.apply_async(blocked)
    started.acquire()
    started.acquire()
    rs = [None] * n
    gc.collect()
    before = rss_bytes()
    for i in range(n):
        rs[i] = pool.apply_async(double, (i,))
    after = rss_bytes()
    gate.set()
    total = sum(r.get() for r in rs)
    pool.close()
    pool.join()
    check(total == n * (n - 1), "MEM sum")
    result("MEM", "bytes_per_task", (after - before) / n)


WORKLOADS = [("MEM", mem), ("W1", w1), ("W2", w2), ("W3", w3), ("W4a", w4a), ("W4b", w4b),
             ("W5", w5), ("W6", w6), ("W7", w7), ("W8", w8), ("IDLE", idle)]


def main():
    global args
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--only", default="")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--idle-seconds", type=float, default=10.0)
    args = p.parse_args()
    only = set(filter(None, args.only.split(",")))
    if "W4" in only:
        only |= {"W4a", "W4b"}
    calibrate_spin()
    failures = 0
    for _ in range(max(1, args.reps)):
        for name, fn in WORKLOADS:
            if only and name not in only:
                continue
            try:
                fn()
            except Exception as e:  # report and go on with the next workload
                print(f"FAIL {name} python {e!r}", file=sys.stderr, flush=True)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
