"""The run directory: its typed records, the checkpoint commit protocol, and rebuilding a run.

``RunDir`` writes and reads every file of a run; ``cnnlab.run.record`` defines what each holds.
"""

from cnnlab.run.checkpoint import Checkpoints
from cnnlab.run.record import Confusion, DataRecord, Divergence, MetricsRow, Summary, TestResult
from cnnlab.run.rundir import RunDir

__all__ = ["Checkpoints", "Confusion", "DataRecord", "Divergence", "MetricsRow", "RunDir", "Summary", "TestResult"]
