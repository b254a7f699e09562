"""Benchmarks behind ``cnnlab bench ...``: each module that defines ``register(subparsers)``
adds one ``cnnlab bench NAME`` command. Every benchmark times a baseline in the same process
and prints ratios against it, so figures compare like with like on whatever machine runs them.
"""
