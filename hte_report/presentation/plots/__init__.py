"""Forest plots and effect curves drawn from the tidy frames of an :class:`HTEResult`.

Every number shown comes from ``result.effects``, ``overall_effect``, ``interaction_p`` or
``curve``; nothing is refitted or recomputed. Axes labels (``forest-absolute``, ...) and artist
gids (``forest-points-absolute``, ``curve-estimate-relative``, ...) let tests read values back.

Modules: :mod:`~hte_report.presentation.plots.style` (:class:`ForestStyle`, fonts, text
measurement and labels), :mod:`~hte_report.presentation.plots.axes` (limits and ticks),
:mod:`~hte_report.presentation.plots.forest` (:func:`forest_plot`: panels, x-limits, ticks,
decimals, arm labels, text columns, display labels; its footnote in
:mod:`~hte_report.presentation.plots.forest_notes`) and
:mod:`~hte_report.presentation.plots.curves` (:func:`effect_curve`).
"""

from hte_report.core.format import MINUS
from hte_report.presentation.plots.curves import effect_curve
from hte_report.presentation.plots.forest import POSTHOC, forest_plot
from hte_report.presentation.plots.style import ForestStyle, fmt_decimals

__all__ = ["MINUS", "POSTHOC", "ForestStyle", "effect_curve", "fmt_decimals", "forest_plot"]
