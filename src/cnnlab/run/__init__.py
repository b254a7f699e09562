"""Run directories: atomic writes, the folder layout, and rebuilding a run from its folder."""

from cnnlab.run.rundir import RunDir, read_metrics

__all__ = ["RunDir", "read_metrics"]
# cnnlab.run.restore (restore_model, restore_splits) imports the engine; import it explicitly.
