"""ReplayWeb's benchmark suite: `make bench` (quick) or `BENCH_SIZES=10000,100000,1000000 make bench`.

Every figure is measured beside a baseline taken in the same run on the same machine, and the
ratio between them is what docs/BENCH.md quotes. See bench/suite.py.
"""
