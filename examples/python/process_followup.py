# The Python original of examples/process_followup.cpp: a ProcessPoolExecutor whose done
# callbacks submit a follow-up task for each result above one half. Each task seeds its own
# generator from (seed, round, i), so a seed fixes the values whatever the timing.
# Usage: python3 process_followup.py [--seed N]
import sys
import threading
from random import Random
from time import sleep
from concurrent.futures import ProcessPoolExecutor, wait


def task1(i, s):
    value = Random(f'{s}-1-{i}').random()
    sleep(value * 0.5)
    print(f'Task 1: {value}', flush=True)
    return value


def task2(i, value1, s):
    value2 = Random(f'{s}-2-{i}').random()
    sleep(value2 * 0.5)
    print(f'Task 2: value1={value1}, value2={value2}', flush=True)
    return value2


if __name__ == '__main__':
    s = int(sys.argv[sys.argv.index('--seed') + 1]) if '--seed' in sys.argv else Random().random()
    callbacks_done = threading.Semaphore(0)
    follow_ups = []
    with ProcessPoolExecutor(5) as executor:
        def on_done(future, i):
            value = future.result()
            if value > 0.5:
                follow_ups.append(executor.submit(task2, i, value, s))
            callbacks_done.release()

        futures1 = [executor.submit(task1, i, s) for i in range(10)]
        for i, future in enumerate(futures1):
            future.add_done_callback(lambda f, i=i: on_done(f, i))
        for _ in futures1:  # every callback ran (so every follow-up was submitted)
            callbacks_done.acquire()
        wait(follow_ups)
