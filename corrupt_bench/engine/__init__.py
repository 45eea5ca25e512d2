"""corrupt_bench.engine"""
