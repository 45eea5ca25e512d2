"""corrupt_bench.generate"""
