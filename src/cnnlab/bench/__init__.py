"""Benchmarks: measuring functions that return rows and dicts (``cnnlab bench NAME`` prints them).

Every benchmark times a baseline in the same process and reports ratios against it, so
figures compare like with like on whatever machine runs them.
"""
