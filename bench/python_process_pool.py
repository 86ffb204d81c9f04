#!/usr/bin/env python3
"""The process-bench workloads (bench/process_bench.cpp) on Python's process pools, each
with 2 workers: concurrent.futures.ProcessPoolExecutor ("ppe"), multiprocessing.Pool ("mp")
and pebble.ProcessPool ("pebble", Debian's python3-pebble; a NOTE says when it is missing).

Prints the same lines as process-bench:
    RESULT <workload> <library> <metric> <value>
    NOTE   <workload> <library> <text>
Rates are per task (or per item), so they compare with process-bench's despite smaller N.

usage: python_process_pool.py [--smoke] [--reps N] [--only P1,P3,...] [--scale F]
"""
import argparse
import concurrent.futures
import multiprocessing
import os
import signal
import statistics
import sys
import time

try:
    import pebble
except ImportError:  # reported per workload
    pebble = None

args = None


def n_of(full, smoke):
    return smoke if args.smoke else max(1, round(full * args.scale))


def result(w, lib, metric, value):
    print(f"RESULT {w} {lib} {metric} {value:.6g}", flush=True)


def note(w, lib, text):
    print(f"NOTE {w} {lib} {text}", flush=True)


def check(ok, what):
    if not ok:
        raise AssertionError(what)


def trivial(x):
    return x + 1


def square(x):
    return x * x


def crash(_):
    os.kill(os.getpid(), signal.SIGSEGV)


# ---- the three pools, behind one small interface ----------------------------------------------

class PPE:
    name = "ppe"

    def __init__(self, method="forkserver", workers=2):
        self.pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))

    def submit(self, f, x):
        return self.pool.submit(f, x)

    @staticmethod
    def get(r):
        return r.result()

    def map(self, f, xs):
        return list(self.pool.map(f, xs))

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


class MP:
    name = "mp"

    def __init__(self, method="forkserver", workers=2):
        self.pool = multiprocessing.get_context(method).Pool(workers)

    def submit(self, f, x):
        return self.pool.apply_async(f, (x,))

    @staticmethod
    def get(r):
        return r.get()

    def map(self, f, xs):
        return self.pool.map(f, xs)

    def close(self):
        self.pool.terminate()
        self.pool.join()


class Pebble:
    name = "pebble"

    def __init__(self, method="forkserver", workers=2):
        self.pool = pebble.ProcessPool(max_workers=workers, context=multiprocessing.get_context(method))

    def submit(self, f, x):
        return self.pool.schedule(f, (x,))

    @staticmethod
    def get(r):
        return r.result()

    def map(self, f, xs):
        return list(self.pool.map(f, xs).result())

    def close(self):
        self.pool.stop()
        self.pool.join()


def pools():
    out = [PPE, MP]
    if pebble is not None:
        out.append(Pebble)
    return out


def warm(p):
    for r in [p.submit(trivial, i) for i in range(100)]:
        p.get(r)


def p1():
    for cls in pools():
        n = n_of(10_000 if cls is not Pebble else 5_000, 100)
        p = cls()
        warm(p)
        t0 = time.perf_counter()
        rs = [p.submit(trivial, i) for i in range(n)]
        total = sum(p.get(r) for r in rs)
        t = time.perf_counter() - t0
        p.close()
        check(total == n * (n + 1) // 2, "P1 sum")
        result("P1", cls.name, "rate", n / t)


def p2():
    for cls in pools():
        n = n_of(1_000, 50)
        p = cls()
        warm(p)
        us = []
        for i in range(n):
            t0 = time.perf_counter()
            v = p.get(p.submit(trivial, i))
            us.append((time.perf_counter() - t0) * 1e6)
            check(v == i + 1, "P2 value")
        p.close()
        us.sort()
        result("P2", cls.name, "p50_us", us[len(us) // 2])
        result("P2", cls.name, "p99_us", us[min(len(us) - 1, len(us) * 99 // 100)])


def p3():
    for cls in pools():
        # multiprocessing.Pool.map's default chunksize is len / (4 * workers); the executor's
        # and pebble's default is 1, so they get fewer items (the rate is per item).
        n = n_of(1_000_000 if cls is MP else 20_000, 2_000)
        xs = list(range(n))
        p = cls()
        warm(p)
        t0 = time.perf_counter()
        ys = p.map(square, xs)
        t = time.perf_counter() - t0
        p.close()
        check(len(ys) == n and ys[-1] == (n - 1) ** 2, "P3 values")
        result("P3", cls.name, "rate", n / t)
        result("P3", cls.name, "time_s", t)
        if cls is not MP:
            note("P3", cls.name, f"default chunksize 1, {n} items")


def p4():
    rounds = 1 if args.smoke else 3
    for method in ("forkserver", "spawn", "fork"):
        for cls in pools():
            ms = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                p = cls(method)
                check(p.get(p.submit(trivial, 1)) == 2, "P4 first result")
                ms.append((time.perf_counter() - t0) * 1e3)
                p.close()
            result("P4", cls.name, f"start_ms_{method}", statistics.median(ms))
        # crash to replacement ready
        note("P4", "ppe", f"crash_{method}: a dead worker breaks the executor (BrokenProcessPool for every "
                          "pending future, no new work): no replacement")
        p = MP(method, workers=1)
        warm(p)
        t0 = time.perf_counter()
        lost = p.submit(crash, 0)  # never completes: its get() would hang (bpo-22393)
        check(p.get(p.submit(trivial, 2)) == 3, "P4 mp after crash")
        result("P4", "mp", f"crash_ms_{method}", (time.perf_counter() - t0) * 1e3)
        check(not lost.ready(), "P4 mp lost task")
        p.close()
        if pebble is not None:
            p = Pebble(method, workers=1)
            warm(p)
            t0 = time.perf_counter()
            try:
                p.get(p.submit(crash, 0))
                check(False, "P4 pebble crash")
            except pebble.ProcessExpired:
                pass
            check(p.get(p.submit(trivial, 2)) == 3, "P4 pebble after crash")
            result("P4", "pebble", f"crash_ms_{method}", (time.perf_counter() - t0) * 1e3)
            p.close()


WORKLOADS = {"P1": p1, "P2": p2, "P3": p3, "P4": p4}


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--only", default="")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--idle-seconds", type=float, default=0)  # accepted for scripts/bench
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    print(f"# python_process_pool.py: {sys.version.split()[0]} ({sys.executable}), pebble "
          f"{getattr(pebble, '__version__', 'missing')}", flush=True)
    if pebble is None:
        for w in WORKLOADS:
            note(w, "pebble", "python3-pebble not installed (apt-get install python3-pebble)")
    failures = 0
    for _ in range(args.reps):
        for w, fn in WORKLOADS.items():
            if only and w not in only:
                continue
            try:
                fn()
            except Exception as e:  # one failing workload does not hide the others
                print(f"FAIL {w} python {e!r}", file=sys.stderr, flush=True)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
