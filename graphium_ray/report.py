"""Human-readable metrics tables."""

from __future__ import annotations


def metrics_table(metrics: dict[str, dict[str, dict]], splits: tuple[str, ...] = ("val", "test"),
                  units: dict[str, str] | None = None) -> str:
    """One line per (task, split): n labels and every metric; undefined metrics print as 'undef'.
    ``units``: task → unit of its labels (MAE/RMSE are in it), shown after the task name; with
    replicates (``<split>_std`` present) values print as mean ± std."""
    names: list[str] = []
    for split in splits:
        for values in metrics.get(split, {}).values():
            names += [k for k in values if k != "n" and k not in names]
    units = units or {}
    header = f"{'task (unit)':<40}{'split':<6}{'n':>7}" + "".join(f"{n:>19}" for n in names)
    lines = [header, "-" * len(header)]
    for split in splits:
        spread = metrics.get(f"{split}_std", {})
        for task, values in metrics.get(split, {}).items():
            cells = [f"{_cell(values.get(n, ''), spread.get(task, {}).get(n)):>19}" for n in names]
            label = f"{task} ({units[task]})" if units.get(task) else task
            lines.append(f"{label:<40}{split:<6}{values.get('n', 0):>7}" + "".join(cells))
    return "\n".join(lines)


def _cell(value, std) -> str:
    if value is None:
        return "undef"
    if value == "":
        return ""
    return f"{value:.4g}±{std:.2g}" if std is not None else f"{value:.5g}"
