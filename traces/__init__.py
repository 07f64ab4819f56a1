"""Traces: the canonical format, readers, writers and workload generators."""
