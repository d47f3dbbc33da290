"""The producer side: ``enqueue`` and its options, the name checks, and the ``Job`` handle.

Internal: import the public names from ``scalr_queue``.
"""
