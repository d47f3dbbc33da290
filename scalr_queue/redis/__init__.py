"""Redis plumbing: connections, every key name, the Lua scripts, and a throwaway server for tests.

Internal: nothing here is public API.
"""
