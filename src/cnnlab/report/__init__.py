"""Reports and plots, read only from a run directory."""

from cnnlab.report.html import write_report

__all__ = ["write_report"]
