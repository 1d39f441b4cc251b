"""ddtool: deepfake forensics toolkit (scan, extract, train, explain, report)."""

__version__ = "0.1.0"
