"""fakewatch's benchmark: stage timings, decode floor, naive reference mode, memory and throughput.

Run from the repository root (`python -m bench.run` or `fakewatch bench`); see bench/README.md.
"""
