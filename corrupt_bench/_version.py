"""The version of corrupt-bench (read by the build backend, the CLI and every lock and run file)."""

__version__ = "0.1.0"
