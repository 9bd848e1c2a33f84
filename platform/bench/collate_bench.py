"""Batch building speed: our collate from flattened featurized columns vs PyG ``Batch.from_data_list``.

ToyMix-size molecules (QM9 from qm9pack + drug-like ZINC molecules, half each) are featurized once;
then, on one core, side by side in one process:

* ``ours_numpy``: ``collate_arrays`` on the NumPy batch Ray's ``iter_torch_batches`` hands a
  ``NumpyBatchCollateFn`` (object arrays of per-row arrays) — what training uses;
* ``ours_arrow``: ``collate_arrays`` on an Arrow table slice (flat buffers, no per-row objects);
* ``pyg``: ``torch_geometric.data.Batch.from_data_list`` on prebuilt ``Data`` objects (the
  in-memory baseline; building the ``Data`` objects is not counted).

Storage: the cache keeps atom and bond features as int8 (pipeline version 2; float32 before). The
same rows with those two columns cast back to float32 (exactly the previous format) are measured
beside them: Arrow bytes per molecule (what a worker keeps in memory) and collate speed from Arrow,
on the ToyMix-like table and on drug-like (MOSES) molecules alone.

    python platform/bench/collate_bench.py --molecules 4096 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from featurize_bench import drug_like  # noqa: E402
from featurize_bench import median_rate as rate  # noqa: E402

from graphium_ray.config import FeaturizerConfig  # noqa: E402
from graphium_ray.data.builtin import qm9_sample  # noqa: E402
from graphium_ray.data.collate import collate_arrays  # noqa: E402
from graphium_ray.data.in_memory import featurize_smiles  # noqa: E402

WIDTHS = {"graph": 4, "node": 0, "edge": 0}


def toymix_rows(n: int) -> pa.Table:
    smiles = qm9_sample(n // 2, ["SMILES"]).column("SMILES").to_pylist() + drug_like(n - n // 2)[0]
    y = np.random.default_rng(0).normal(size=(len(smiles), 4)).astype(np.float32)
    return featurize_smiles(smiles, y, FeaturizerConfig())


def numpy_batches(table: pa.Table, batch_size: int) -> list[dict[str, np.ndarray]]:
    """Batches shaped like Ray's NumPy batch format (list columns → object arrays of arrays)."""
    out = []
    for start in range(0, table.num_rows, batch_size):
        part = table.slice(start, batch_size)
        cols = {}
        for name in part.column_names:
            col = part.column(name)
            if pa.types.is_list(col.type):
                cols[name] = np.array([np.asarray(v.values) for v in col.combine_chunks()], dtype=object)
            else:
                cols[name] = col.to_numpy(zero_copy_only=False)
        out.append(cols)
    return out


def as_float32_storage(table: pa.Table) -> pa.Table:
    """The same rows in the previous cache format: atom and bond features as float32 lists."""
    for name in ("x", "edge_attr"):
        table = table.set_column(table.schema.get_field_index(name), name, table.column(name).cast(pa.list_(pa.float32())))
    return table


def storage_comparison(tables: dict[str, pa.Table], batch_size: int, repeats: int) -> dict:
    """Per table: Arrow bytes per molecule and collate graphs/s, int8 (now) vs float32 (before),
    the two timed alternately in the same rounds."""
    out = {}
    for label, now in tables.items():
        before = as_float32_storage(now)
        n = now.num_rows
        batches = {k: [t.slice(s, batch_size) for s in range(0, n, batch_size)] for k, t in (("int8", now), ("float32", before))}
        rates = {k: [] for k in batches}
        for _ in range(repeats):
            for k, bs in batches.items():
                rates[k].append(rate(lambda bs=bs: [collate_arrays(b, WIDTHS, 13) for b in bs], n, 1))
        out[label] = {
            "molecules": n,
            "mean_atoms": round(float(np.mean(now.column("num_nodes").to_numpy())), 1),
            "arrow_bytes_per_molecule_int8": round(now.nbytes / n),
            "arrow_bytes_per_molecule_float32": round(before.nbytes / n),
            "memory_ratio_float32_over_int8": round(before.nbytes / now.nbytes, 2),
            "x_and_edge_attr_bytes_per_molecule": {k: round((t.column("x").nbytes + t.column("edge_attr").nbytes) / n)
                                                   for k, t in (("int8", now), ("float32", before))},
            "collate_graphs_per_s": {k: [round(r) for r in v] for k, v in rates.items()},
            "collate_ratio_int8_over_float32_median": round(float(np.median(np.array(rates["int8"]) / np.array(rates["float32"]))), 3),
        }  # fmt: skip
    return out


def pyg_data(table: pa.Table) -> list:
    from torch_geometric.data import Data

    graph = collate_arrays(table, WIDTHS, 13)
    node_start = np.concatenate([[0], np.cumsum(table.column("num_nodes").to_numpy())])
    edge_start = np.concatenate([[0], np.cumsum(table.column("num_edges").to_numpy())])
    data = []
    for g in range(table.num_rows):
        n0, n1, e0, e1 = node_start[g], node_start[g + 1], edge_start[g], edge_start[g + 1]
        data.append(Data(x=graph.x[n0:n1], edge_index=graph.edge_index[:, e0:e1] - n0, edge_attr=graph.edge_attr[e0:e1],
                         y=graph.y["graph"][g : g + 1]))  # fmt: skip
    return data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--molecules", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    from torch_geometric.data import Batch

    table = toymix_rows(args.molecules)
    n, bs = table.num_rows, args.batch_size
    np_batches = numpy_batches(table, bs)
    arrow_batches = [table.slice(s, bs) for s in range(0, n, bs)]
    data = pyg_data(table)
    data_batches = [data[s : s + bs] for s in range(0, n, bs)]
    result = {
        "molecules": n,
        "batch_size": bs,
        "mean_atoms": round(float(np.mean(table.column("num_nodes").to_numpy())), 1),
        "ours_numpy_graphs_per_s": round(rate(lambda: [collate_arrays(b, WIDTHS, 13) for b in np_batches], n, args.repeats)),
        "ours_arrow_graphs_per_s": round(rate(lambda: [collate_arrays(b, WIDTHS, 13) for b in arrow_batches], n, args.repeats)),
        "pyg_from_data_list_graphs_per_s": round(rate(lambda: [Batch.from_data_list(b) for b in data_batches], n, args.repeats)),
    }  # fmt: skip
    result["ours_numpy_vs_pyg"] = round(result["ours_numpy_graphs_per_s"] / result["pyg_from_data_list_graphs_per_s"], 2)
    smiles, source = drug_like(args.molecules)
    drug = featurize_smiles(smiles, np.zeros((len(smiles), 4), np.float32), FeaturizerConfig())
    result["storage"] = storage_comparison({"toymix_like": table, f"drug_like ({source})": drug}, bs, args.repeats)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
