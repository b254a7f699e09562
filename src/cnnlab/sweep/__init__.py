"""Sweeps on Optuna: a grid or a TPE search over a recipe's keys, seeds, pruning, many workers.

``cnnlab sweep`` (cnnlab.cli.sweep) parses the spec (``spec``), creates the sweep folder and its
study (``runner.start_sweep``, ``study``) and runs workers (``runner.work``); every trial is an
ordinary run folder, which ``cnnlab compare`` reads.
"""
