"""The worker side: load the task module, claim, run, retry and settle jobs.

``python -m scalr_queue.worker MODULE`` starts a worker (see ``_main``). Internal otherwise:
import the public names from ``scalr_queue``.
"""
