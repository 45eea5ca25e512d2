"""corrupt_bench.models"""
