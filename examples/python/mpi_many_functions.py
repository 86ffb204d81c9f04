# The mpi4py original of examples/mpi_many_functions.cpp: several different functions
# submitted to an MPICommExecutor, results printed as they complete, each naming the rank
# that ran it.
# Usage: mpirun -n 4 /usr/bin/python3 mpi_many_functions.py (Debian's python3-mpi4py)
from concurrent.futures import as_completed

from mpi4py import MPI
from mpi4py.futures import MPICommExecutor


def rank():
    return MPI.COMM_WORLD.Get_rank()


def square(x):
    return rank(), x * x


def greet(name):
    return rank(), f'Hello, {name}!'


def total(values):
    return rank(), sum(values)


def word_lengths(words):
    return rank(), {w: len(w) for w in words}


def scale(point, factor):
    return rank(), (point[0] * factor, point[1] * factor)


if __name__ == '__main__':
    with MPICommExecutor(MPI.COMM_WORLD, root=0) as executor:
        if executor is not None:
            print(f'Root rank {rank()} of {MPI.COMM_WORLD.Get_size()}')
            jobs = {executor.submit(square, 7): 'square(7)',
                    executor.submit(greet, 'pypool'): "greet('pypool')",
                    executor.submit(total, [1, 2, 3, 4]): 'total([1, 2, 3, 4])',
                    executor.submit(word_lengths, ['pool', 'rank']): "word_lengths(['pool', 'rank'])",
                    executor.submit(scale, (1.5, -2.0), 4): 'scale((1.5, -2.0), 4)'}
            for future in as_completed(jobs):
                r, value = future.result()
                print(f'{jobs[future]} = {value!r} (rank {r})')
