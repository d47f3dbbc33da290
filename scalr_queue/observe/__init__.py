"""Seeing the work: logs, Prometheus metrics, queue depth, the health endpoint and tracing.

Internal: import the public names from ``scalr_queue``.
"""
