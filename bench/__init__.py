"""Benchmarks: scripts that print what they measured (python -m bench.<name> --help)."""
