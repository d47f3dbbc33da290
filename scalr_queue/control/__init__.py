"""Steering queued and running work: cancel, hold and release, and the failed set.

Internal: import the public names from ``scalr_queue``.
"""
