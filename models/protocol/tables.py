"""The protocol's figures as Markdown tables, for the model card, `fakewatch eval` and the README."""

from __future__ import annotations

from models.protocol.metrics import ProtocolMetrics, ProtocolReport

COLUMNS = ("videos (fake)", "AUC [95% CI]", "TPR@FPR5%", "TPR@FPR10%", "EER", "FPR@thr", "TPR@thr",
           "log loss (base rate)")


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def metrics_row(name: str, m: ProtocolMetrics) -> str:
    interval = "" if m.auc_low is None else f" [{m.auc_low:.2f}, {m.auc_high:.2f}]"
    cells = (
        f"{m.videos} ({m.fakes})", f"{_number(m.auc)}{interval}", _number(m.tpr_at_fpr_5, 2),
        _number(m.tpr_at_fpr_10, 2), _number(m.eer, 2), _number(m.fpr_at_threshold, 2),
        _number(m.tpr_at_threshold, 2), f"{m.log_loss:.3f} ({m.base_rate_log_loss:.3f})",
    )
    return f"| {name} | " + " | ".join(cells) + " |"


def table(title: str, rows: dict[str, ProtocolMetrics]) -> str:
    header = f"| {title} | " + " | ".join(COLUMNS) + " |"
    rule = "|" + " --- |" * (len(COLUMNS) + 1)
    return "\n".join([header, rule, *(metrics_row(name, m) for name, m in rows.items())])


def report_tables(report: ProtocolReport, fold_title: str = "held-out fold") -> str:
    """Overall, by family (its fakes against every real clip), by source and by fold (`fold_title`
    says what was fitted without the fold)."""
    parts = [
        table("all videos", {"overall": report.overall}),
        table("family (its fakes vs all real)", report.by_family),
        table("source (one-label sources vs the other label)", report.by_source),
    ]
    if report.by_fold:
        parts.append(table(fold_title, report.by_fold))
    return "\n\n".join(parts)
