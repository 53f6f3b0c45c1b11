"""Deprecated: the sizing tables and plot are :mod:`dni_engine.sizing_report`.

This module re-exports the same names for one release and warns when imported.
"""

from __future__ import annotations

import warnings

from dni_engine.sizing_report import (
    PlotUnavailable,
    plot_sizing,
    recommendations_table,
    results_table,
)

__all__ = ["PlotUnavailable", "plot_sizing", "recommendations_table", "results_table"]

warnings.warn(
    "dni_engine.sizing is deprecated; use dni_engine.sizing_report",
    DeprecationWarning,
    stacklevel=2,
)
