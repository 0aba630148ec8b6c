"""fakewatch's ML core: video -> faces -> crops -> classifier ensemble -> scores.

Importing this package is cheap and torch-free; torch is imported by the modules that need it.
"""
