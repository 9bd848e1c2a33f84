"""When a small input is better done in the driver process than as Ray Data jobs on the cluster.

``prepare`` (``data.prepare_in_driver: auto``) and ``predict`` / ``fingerprint`` run the same code
in the driver when the estimated single-core work is at most :data:`IN_DRIVER_SECONDS`. On the
cluster the same work costs ~5-6 s of start-up (new pools of RDKit processes, an actor loading the
model; more when Ray itself must be started) plus the work spread over the CPUs, so on 2 CPUs the
driver wins up to ~11 s of work and on many CPUs up to ~5 s. The per-molecule costs are the
in-driver times of the downstream sets and Tox21 (BENCHMARKS.md section 3c: 0.4-1.0 ms a molecule,
3.4-8.4 ms with RDKit's 2D descriptors); with them the rule chose the faster path in all ten of
that section's cases. Inputs over :data:`IN_DRIVER_MAX_BYTES` on disk are not even counted.

A featurized cache of at most :data:`CACHE_IN_DRIVER_BYTES` on disk is read in the driver (its
label statistics in ``prepare``, a split scored by ``evaluate``): a Ray Data job's start-up (~2 s
on 2 cores) is longer than reading ~100,000 small molecules' rows.
"""

from __future__ import annotations

import os

import pyarrow.parquet as pq

from graphium_ray.data.sources import iter_batches

IN_DRIVER_SECONDS = 8.0
IN_DRIVER_MAX_BYTES = 16 << 20
SECONDS_PER_MOLECULE = 1e-3  # parse, key, merge, featurize with the default features (or run a small model)
SECONDS_PER_MOLECULE_FEATURE_SET = 6e-3  # each RDKit descriptor pass (rdkit2d: ~210 descriptors)
CACHE_IN_DRIVER_BYTES = 64 << 20


def rows_of(path: str, fmt: str, smiles_column: str) -> int:
    """Data rows of one source file (Parquet: from its footer; CSV: its SMILES column read once)."""
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return sum(batch.num_rows for _, batch in iter_batches(path, fmt, [smiles_column], 1 << 20))


def small_enough(files: list[tuple[str, str, str]], descriptor_passes: int) -> bool:
    """``files``: (local path, format, SMILES column) of every input; ``descriptor_passes``: RDKit
    descriptor passes per molecule (:func:`graphium_ray.chem.descriptors.descriptor_passes`). True
    when the estimated single-core work, rows × (SECONDS_PER_MOLECULE + SECONDS_PER_MOLECULE_FEATURE_SET
    × passes), is at most IN_DRIVER_SECONDS."""
    if sum(os.path.getsize(path) for path, _, _ in files) > IN_DRIVER_MAX_BYTES:
        return False
    per_molecule = SECONDS_PER_MOLECULE + SECONDS_PER_MOLECULE_FEATURE_SET * descriptor_passes
    return sum(rows_of(*f) for f in files) * per_molecule <= IN_DRIVER_SECONDS


def cache_small_enough(files: list[str]) -> bool:
    """A featurized cache's files (Parquet) are at most CACHE_IN_DRIVER_BYTES on disk."""
    return sum(os.path.getsize(f) for f in files) <= CACHE_IN_DRIVER_BYTES
