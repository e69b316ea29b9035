"""Benchmarks of SVP against backpropagation: memory, speed and accuracy.

Run `python -m keras_svp.benchmarks --help` (or `keras-svp bench --help`).
"""
