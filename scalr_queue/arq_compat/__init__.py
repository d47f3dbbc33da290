"""arq compatibility: arq's ``WorkerSettings`` class path and arq's own ``Job`` API on our queues.

Internal: import the public names from ``scalr_queue``.
"""
