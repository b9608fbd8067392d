"""The claims C1–C5 of the article, and C6–C7 beyond it, measured on run folders, with verdicts.

`write_report(experiment_dir)` reads every run folder under the experiment
(event files, `history.json`, `model.keras` and the step-0 weights,
`probe.npz`, and the data regenerated from `config.json` and checked against
the run's fingerprint), never retrains, and writes `REPORT.md` and
`report.json` beside them. Each claim gets its measured figures, the rule that
turns them into a verdict and the verdict.

    reproduce report logs/article

The package, in reading order:

    evidence.py      verdicts, the `Claim` result, the typed per-run evidence
    measures.py      pure measures of logged series and histograms
    networks.py      measures of a saved network: forward chain, logits, gradients, collapse
    context.py       the runs, their checked data, what several claims share
    linear_runs.py   C3's and C4's measurements of one linear run
    mode_dynamics.py C6's measures: analytic curves, half-learning times, plateaus
    saturation.py    C7's measures: activations over training, gradients at step 0
    c1_loss_drop.py ... c7_sigmoid_saturation.py
                     one claim each: thresholds, rule text, pure judge, narrative
    text.py          number formatting and Markdown tables
    writer.py        the claim registry `CLAIMS`, which experiment gets which claims
                     (`BEYOND`), REPORT.md and report.json
"""

from reproduce.report.evidence import VERDICTS, Claim
from reproduce.report.writer import (
    CLAIMS, REPORT_FILE, REPORT_JSON, build_report, is_beyond, write_report)

__all__ = ["CLAIMS", "REPORT_FILE", "REPORT_JSON", "VERDICTS", "Claim", "build_report",
           "is_beyond", "write_report"]
