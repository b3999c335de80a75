"""Benchmarks (placeholder)."""
