"""`python -m bench.run [VIDEOS...] [options]`: the same as `fakewatch bench`, from the repo root."""

from fakewatch.cli.bench import bench

if __name__ == "__main__":
    bench()
