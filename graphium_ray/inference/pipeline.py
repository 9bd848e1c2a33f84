"""Batch inference with Ray Data: input shards → featurize + model on an actor pool → Parquet.

Reads any number of CSV/Parquet files (paths, globs or URLs) in streaming record batches, so memory
stays bounded whatever the input size. Every input row produces exactly one output row carrying
``src_file`` and ``src_row`` (0-based data row), the SMILES, any ``keep_columns`` and ``error``.
``OUTPUT`` ending in ``.parquet`` is written as one file, in input order, by a streaming writer in
the driver; any other ``OUTPUT`` is a directory of Parquet shards written by the cluster. A small
input (a few seconds of work) is predicted in the driver process instead, with the same code and
output, without starting Ray.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import ray
import torch
import yaml

from graphium_ray.chem.descriptors import descriptor_passes
from graphium_ray.config import ConfigError
from graphium_ray.data.cells import INPUT_ERROR, read_cells
from graphium_ray.data.in_driver import small_enough
from graphium_ray.data.resources import TASK_CPUS, actor_pool
from graphium_ray.data.sources import open_sources
from graphium_ray.inference.predictor import BatchPredictor, check_loadable, embedding_layers, read_checkpoint_files


def _input_files(inputs: list[str], columns: list[str]) -> list[dict]:
    download_dir = Path(tempfile.gettempdir()) / "graphium_ray_downloads"
    files = []
    for display, local, fmt, header in open_sources(inputs, "input", download_dir):
        missing = [c for c in columns if c not in header]
        if missing:
            raise ConfigError(f"{display}: column(s) {missing} not found; available columns: {header[:20]}")
        files.append({"path": local, "display": display, "fmt": fmt})
    return files


def _read(batch: dict, columns: list[str], rows_per_batch: int):
    for path, display, fmt in zip(batch["path"], batch["display"], batch["fmt"], strict=True):
        for first_row, n, cells, errors in read_cells(str(path), str(fmt), columns, rows_per_batch):
            yield pa.table({"src_file": pa.array([str(display)] * n, pa.string()),
                            "src_row": pa.array(range(first_row, first_row + n), pa.int64()),
                            **{c: cells[c] for c in columns}, INPUT_ERROR: pa.array([errors.get(i) for i in range(n)], pa.string())})  # fmt: skip


def _predicted_in_driver(sources: list[dict], predictor_kwargs: dict, columns: list[str], rows_per_batch: int):
    """The actor pool's work done here, input batch by input batch and in input order (the model run
    with one torch thread, as in an actor; the caller's thread count is restored)."""
    threads = torch.get_num_threads()
    try:
        predictor = BatchPredictor(**predictor_kwargs)
        item = {k: [s[k] for s in sources] for k in ("path", "display", "fmt")}
        for table in _read(item, columns, rows_per_batch):  # tables of at most rows_per_batch rows
            yield predictor(table)
    finally:
        torch.set_num_threads(threads)


def run_inference(checkpoint: str, inputs: list[str], output: str, *, smiles_column: str = "smiles",
                  keep_columns: tuple[str, ...] = (), mode: str = "predict", layer: str = "graph",
                  batch_size: int = 256, concurrency: int | None = None, where: str = "auto",
                  start_ray: Callable[[], None] | None = None) -> dict:  # fmt: skip
    """Predict (or embed) every row of ``inputs``; returns {"rows", "errors", "output", "where"}.

    ``where``: ``cluster`` (Ray Data: an actor pool over the cluster), ``driver`` (this process) or
    ``auto`` (the driver for a small input: :mod:`graphium_ray.data.in_driver`). ``start_ray`` is called
    before any Ray work (e.g. to start or join a cluster); the driver path needs none. Same output
    either way."""
    if where not in ("auto", "driver", "cluster"):
        raise ConfigError(f"where={where!r}: choose auto, driver or cluster")
    files = read_checkpoint_files(checkpoint)
    check_loadable(checkpoint, files)
    num_layers = yaml.safe_load(files["0/config.yaml"])["model"]["num_layers"]
    if mode == "embed" and layer not in embedding_layers(num_layers):
        raise ConfigError(f"--layer {layer!r}: this model has {embedding_layers(num_layers)}")
    columns = list(dict.fromkeys([smiles_column, *keep_columns]))
    sources = _input_files(inputs, columns)
    passes = descriptor_passes(json.loads(files["0/data.json"])["featurizer"].get("molecule", []))
    files_in = [(s["path"], s["fmt"], smiles_column) for s in sources]
    local = where == "driver" or (where == "auto" and small_enough(files_in, passes))
    predictor_kwargs = {"checkpoint_files": files, "smiles_column": smiles_column, "mode": mode, "layer": layer,
                        "batch_size": batch_size}  # fmt: skip
    if local:
        tables = _predicted_in_driver(sources, predictor_kwargs, columns, 4 * batch_size)
        if not output.endswith(".parquet"):  # a directory of shards, as the cluster writes it: one here
            Path(output).mkdir(parents=True, exist_ok=True)
            output_file = str(Path(output) / "part-00000.parquet")
    else:
        if start_ray is not None:
            start_ray()
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        ds = ray.data.from_items(sources, override_num_blocks=len(sources))
        ds = ds.map_batches(_read, batch_size=1, batch_format="numpy", num_cpus=TASK_CPUS,
                            fn_kwargs={"columns": columns, "rows_per_batch": 4 * batch_size})  # fmt: skip
        ds = ds.map_batches(BatchPredictor, fn_constructor_kwargs=predictor_kwargs, batch_size=4 * batch_size,
                            batch_format="pyarrow", **actor_pool(concurrency))  # fmt: skip
        tables = ds.iter_batches(batch_size=None, batch_format="pyarrow")
    where_ran = "driver" if local else "cluster"
    if output.endswith(".parquet") or local:  # one file, in input order, written here
        rows, errors = _write_one_file(tables, output if output.endswith(".parquet") else output_file, inputs)
        return {"rows": rows, "errors": errors, "output": output, "where": where_ran}
    ds.write_parquet(output, ray_remote_args={"num_cpus": TASK_CPUS})
    rows = errors = 0
    for ref in ray.data.read_parquet(output, columns=["error"]).to_arrow_refs():
        table = ray.get(ref)
        rows += table.num_rows
        errors += table.num_rows - table.column("error").null_count
    return {"rows": rows, "errors": errors, "output": output, "where": where_ran}


def _write_one_file(tables, target: str, inputs: list[str]) -> tuple[int, int]:
    """Stream output tables into one Parquet file (under a temporary name until complete);
    returns (rows, rows with an error)."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    rows = errors = 0
    tmp = Path(target + ".part")
    writer = None
    for table in tables:
        writer = writer or pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
        rows += table.num_rows
        errors += table.num_rows - table.column("error").null_count
    if writer is None:
        raise ConfigError(f"input {inputs}: no rows")
    writer.close()
    tmp.replace(target)
    return rows, errors
