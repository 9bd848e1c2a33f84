"""What a run directory shows of its epochs: ``epochs.csv`` (one row per epoch: train/val loss,
every validation metric in real units, learning rate, graphs/s, whether it is the selected epoch)
and ``learning_curve.png`` (train and validation loss, and the selection metric, per epoch)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from graphium_ray.train.selection import epoch_metrics, metric_value


def epochs_frame(history: list[dict], selected_epoch: int | None) -> pd.DataFrame:
    rows = []
    for record in history:
        row = epoch_metrics(record)
        row["val_loss"] = row.pop("val/loss", None)
        row["epoch_seconds"] = record.get("epoch_seconds")
        row["selected"] = record["epoch"] == selected_epoch
        rows.append(row)
    frame = pd.DataFrame(rows)
    first = ["epoch", "train_loss", "val_loss", "lr", "graphs_per_s", "epoch_seconds", "selected"]
    return frame[first + [c for c in frame.columns if c not in first]]


def plot_learning_curve(history: list[dict], metric: str, selected_epoch: int | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train loss")
    ax_loss.plot(epochs, [r.get("val_loss") for r in history], marker="o", label="val loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss (normalized labels)")
    ax_loss.legend()
    values = [metric_value(r, metric) for r in history]
    ax_metric.plot(epochs, [float("nan") if v is None else v for v in values], marker="o", color="C2")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel(metric)
    if selected_epoch is not None:
        for ax in (ax_loss, ax_metric):
            ax.axvline(selected_epoch, color="grey", linestyle="--", label="selected")
    fig.suptitle(f"selected epoch {selected_epoch} by {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_curves(history: list[dict], metric: str, selected_epoch: int | None, run_dir: Path) -> None:
    epochs_frame(history, selected_epoch).to_csv(run_dir / "epochs.csv", index=False)
    plot_learning_curve(history, metric, selected_epoch, run_dir / "learning_curve.png")
