"""corrupt-bench: deterministic corrupted Human3.6M benchmarks and a scoring harness."""

__version__ = "0.1.0"
