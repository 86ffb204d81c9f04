# The Python original of examples/process_many_functions.cpp: several different functions
# submitted to one ProcessPoolExecutor, each reporting the process it ran in.
# Usage: python3 process_many_functions.py
import os
from concurrent.futures import ProcessPoolExecutor


def square(x):
    return os.getpid(), x * x


def greet(name):
    return os.getpid(), f'Hello, {name}!'


def total(values):
    return os.getpid(), sum(values)


def word_lengths(words):
    return os.getpid(), {w: len(w) for w in words}


def scale(point, factor):
    return os.getpid(), (point[0] * factor, point[1] * factor)


if __name__ == '__main__':
    print(f'Main process: {os.getpid()}')
    with ProcessPoolExecutor(3) as executor:
        jobs = [('square(7)', executor.submit(square, 7)),
                ("greet('pypool')", executor.submit(greet, 'pypool')),
                ('total([1, 2, 3, 4])', executor.submit(total, [1, 2, 3, 4])),
                ("word_lengths(['pool', 'process'])", executor.submit(word_lengths, ['pool', 'process'])),
                ('scale((1.5, -2.0), 4)', executor.submit(scale, (1.5, -2.0), 4))]
        for name, future in jobs:
            pid, value = future.result()
            print(f'{name} = {value!r} (process {pid})')
