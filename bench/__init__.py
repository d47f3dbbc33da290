"""Benchmark of scalr_queue against vanilla arq, measured side by side in one run (``python -m bench.run``)."""
