"""Human-readable metrics tables."""

from __future__ import annotations


def metrics_table(metrics: dict[str, dict[str, dict]], splits: tuple[str, ...] = ("val", "test")) -> str:
    """One line per (task, split): n labels and every metric; undefined metrics print as 'undef'."""
    names: list[str] = []
    for split in splits:
        for values in metrics.get(split, {}).values():
            names += [k for k in values if k != "n" and k not in names]
    header = f"{'task':<28}{'split':<6}{'n':>7}" + "".join(f"{n:>19}" for n in names)
    lines = [header, "-" * len(header)]
    for split in splits:
        for task, values in metrics.get(split, {}).items():
            cells = []
            for n in names:
                v = values.get(n, "")
                cells.append(f"{'undef' if v is None else (f'{v:.5g}' if v != '' else ''):>19}")
            lines.append(f"{task:<28}{split:<6}{values.get('n', 0):>7}" + "".join(cells))
    return "\n".join(lines)
