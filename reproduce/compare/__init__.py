"""Cross-run comparison of logged histograms, layer by layer (`reproduce compare`).

    table.py       `tabulate`: the numbers, pure, shared with the TensorBoard plugin
    comparison.py  `compare_runs`: runs found and read, the `Comparison` as text and JSON
    overlays.py    the figures: histograms of every run overlaid per tag, and the norms

Exports the names below from their modules, on first use (the plugin's
table needs no matplotlib).
"""

from reproduce.exports import exports

__getattr__, __all__ = exports(__name__, {
    "table": ("DEFAULT_TAGS", "SYMBOLS", "NormRatio", "Table", "TagRow", "format_number",
              "scalar_tags_read", "tabulate"),
    "comparison": ("COMPARE_DIR", "Comparison", "build_comparison", "choose_out_dir",
                   "compare_runs", "resolve_runs"),
    "overlays": ("NORMS_FILE", "plot_comparison"),
})
