"""Export: publish a run's segments as the next immutable dataset version with training formats, manifest and
card."""

from pairforge.export.publish import ExportInputs, NothingToPublish, run_export

__all__ = ["ExportInputs", "NothingToPublish", "run_export"]
