import os

# One BLAS/OpenMP thread per process: the distributed and tool tests start
# several processes on small machines, and oversubscribed threads slow them
# down by an order of magnitude. Set before torch is imported by the tests.
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')
