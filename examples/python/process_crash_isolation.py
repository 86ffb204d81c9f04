# The Python original of examples/process_crash_isolation.cpp, and what Python does with it:
# one task that segfaults breaks the whole ProcessPoolExecutor, so every task still pending
# fails with BrokenProcessPool and the pool refuses new work. (A task that never returns is
# left out: Python has no task timeout, and the with block would wait for it forever.)
# Usage: python3 process_crash_isolation.py
import ctypes
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool


def risky(x):
    if x % 7 == 3:
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    if x == 12:
        raise ValueError('x must not be 12')
    return x * x


if __name__ == '__main__':
    ok = crashed = raised = 0
    with ProcessPoolExecutor(2) as executor:
        futures = [executor.submit(risky, x) for x in range(20)]
        for x, future in enumerate(futures):
            try:
                print(f'risky({x}) = {future.result()}')
                ok += 1
            except BrokenProcessPool as e:
                print(f'risky({x}) failed: BrokenProcessPool: {e}')
                crashed += 1
            except ValueError as e:
                print(f'risky({x}) failed: ValueError: {e}')
                raised += 1
    print(f'finished: {ok} succeeded, {crashed} crashed, {raised} raised')
