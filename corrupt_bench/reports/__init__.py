"""corrupt_bench.reports"""
