"""The report: what each section computes (``sections/``), the HTML page and its figures, the JSON schema.

``report(model, test)`` (:mod:`bayeslm.report.build`) returns a :class:`Report`
(:mod:`bayeslm.report.result`); :mod:`bayeslm.report.page` renders it as HTML with the
figures of :mod:`bayeslm.report.plots` (matplotlib, imported when a figure is drawn).
"""

from bayeslm.report.build import SCHEMA, Report, output_paths, report

__all__ = ["SCHEMA", "Report", "output_paths", "report"]
