"""Export: publish a run's examples as an immutable dataset version with training formats, manifest and card."""

from pairforge.export.publish import ExportSummary, read_watermark, run_export

__all__ = ["ExportSummary", "read_watermark", "run_export"]
