"""corrupt_bench.harness"""
