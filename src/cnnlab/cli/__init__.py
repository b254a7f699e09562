"""The ``cnnlab`` command line: one module per command (a subpackage per group such as ``bench``),
discovered by ``cnnlab.cli.commands``; ``cnnlab.cli.main`` runs them."""
