"""The report: what it computes, the HTML page and its figures, the JSON schema."""

from bayeslm.report.build import SCHEMA, Report, output_paths, report

__all__ = ["SCHEMA", "Report", "output_paths", "report"]
