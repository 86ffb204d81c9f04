# The Python original of examples/process_as_completed.cpp: results in the order the tasks
# finish, until a timeout fires while some are still running.
# Usage: python3 process_as_completed.py [--seed N] [--timeout SECONDS]
import sys
from random import Random
from time import sleep
from concurrent.futures import ProcessPoolExecutor, as_completed, TimeoutError


def task(name, value):
    sleep(value)
    return f'Task={name}: {value:.2f}'


if __name__ == '__main__':
    rng = Random(int(sys.argv[sys.argv.index('--seed') + 1]) if '--seed' in sys.argv else None)
    timeout = float(sys.argv[sys.argv.index('--timeout') + 1]) if '--timeout' in sys.argv else 0.5
    with ProcessPoolExecutor(4) as executor:
        futures = [executor.submit(task, i, rng.random()) for i in range(10)]
        try:
            for future in as_completed(futures, timeout=timeout):
                print(future.result(), flush=True)
        except TimeoutError as e:
            print(f'Timed out after {timeout} s: {e}', flush=True)
