"""A corpus of bad inputs through the CLI (``graphium_ray.cli.main``, on the session's Ray cluster):
each ends with exit code 2 and one ``error: …`` line, or prepares what is valid and reports the
rest; rows in = rows prepared + rows reported, always."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from graphium_ray import cli
from graphium_ray.config import ConfigError
from graphium_ray.errors import exit_code, one_line

GOOD = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCl"]


def write_config(tmp_path: Path, data_path: Path, cache: Path | None = None) -> Path:
    raw = {"name": "bad", "data": {"cache_dir": str(cache or tmp_path / "cache"), "num_shards": 1,
                                   "datasets": [{"name": "d", "path": str(data_path), "tasks": [{"columns": ["y"]}]}]}}  # fmt: skip
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(autouse=True)
def reopen_log_streams():
    """The CLI runs in this process: loggers set up during one test (the root logger, RDKit's, Ray
    Data's) hold that test's captured stderr, closed afterwards; point them at the live stderr."""
    yield
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if getattr(getattr(handler, "stream", None), "closed", False):
                handler.stream = sys.stderr  # not setStream(): it flushes the closed one


def run_cli(argv: list[str], capsys) -> tuple[int, list[str], str]:
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, [ln for ln in out.err.splitlines() if ln.startswith("error:")], out.err


def csv_bytes(rows: list[tuple[bytes, bytes]]) -> bytes:
    return b"smiles,y\n" + b"".join(s + b"," + y + b"\n" for s, y in rows)


def write_parquet(path: Path, smiles, y) -> Path:
    pq.write_table(pa.table({"smiles": smiles, "y": y}), path)
    return path


def broken_file(kind: str, d: Path) -> Path:
    """A data path that cannot be read as what its name says."""
    if kind == "directory":
        (d / "adir").mkdir()
        return d / "adir"
    name, content = {
        "empty_file": ("empty.csv", b""),
        "png_named_csv": ("img.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"),
        "csv_named_parquet": ("notparquet.parquet", b"smiles,y\nCCO,1\n"),
        # a row with a field too many, far past the header (found when the rows are counted)
        "malformed_row_late": ("late.csv", csv_bytes([(b"CCO", b"1")] * 30_000 + [(b"CCO", b"1,2")])),
    }[kind]
    (d / name).write_bytes(content)
    return d / name


@pytest.mark.parametrize("kind", ["empty_file", "png_named_csv", "csv_named_parquet", "directory", "malformed_row_late"])
def test_unreadable_file_is_one_line_naming_it(ray_cluster, tmp_path, capsys, kind):
    data = broken_file(kind, tmp_path)
    code, errors, err = run_cli(["prepare", str(write_config(tmp_path, data))], capsys)
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    assert str(data) in errors[0]


@pytest.mark.parametrize("where", ["cluster", "driver"])
def test_a_damaged_page_inside_a_parquet_source_is_one_line_naming_file_and_rows(ray_cluster, tmp_path, capsys, where):
    """The footer is fine (the file opens), a data page is not: found by the ingest unit that reads
    those rows, on the cluster or in the driver, and reported as one line naming the file and rows."""
    n = 40_000
    data = tmp_path / "damaged.parquet"
    pq.write_table(pa.table({"smiles": [f"C{'C' * (i % 7)}O" for i in range(n)], "y": [float(i % 13) for i in range(n)]}),
                   data, row_group_size=5_000, compression="none")  # fmt: skip
    raw = bytearray(data.read_bytes())
    middle = int(len(raw) * 0.7)
    raw[middle : middle + 2000] = b"\xff" * 2000
    data.write_bytes(bytes(raw))
    cfg = yaml.safe_load(write_config(tmp_path, data).read_text())
    cfg["data"]["prepare_in_driver"] = "never" if where == "cluster" else "always"
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    code, errors, err = run_cli(["prepare", str(tmp_path / "cfg.yaml")], capsys)
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err[-2000:]
    assert f"{data}: not a readable parquet file" in errors[0] and "in data rows " in errors[0]


def test_unwritable_cache_dir_is_one_line(ray_cluster, tmp_path, capsys):
    data = tmp_path / "ok.csv"
    data.write_bytes(csv_bytes([(s.encode(), b"1") for s in GOOD]))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    code, errors, err = run_cli(["prepare", str(write_config(tmp_path, data, cache=blocker / "cache"))], capsys)
    assert code == 2 and len(errors) == 1 and "data.cache_dir" in errors[0] and "Traceback" not in err


def manifest_of(tmp_path: Path) -> dict:
    (found,) = (tmp_path / "cache").glob("*/manifest.json")
    return json.loads(found.read_text())


def reported_rows(manifest: dict) -> dict[int, str]:
    with open(manifest["skipped"]["report"]) as fh:
        return {int(r["src_row"]): r["reason"] for r in csv.DictReader(fh)}


def test_invalid_utf8_in_one_cell_skips_only_that_row(ray_cluster, tmp_path, capsys):
    rows = [(s.encode(), b"1.5") for s in GOOD]
    rows.insert(2, (b"CC\xff\xfeO", b"2.0"))  # not UTF-8
    rows.insert(4, (b"CCC", b"3\xc3("))  # a label cell with a broken multi-byte sequence
    data = tmp_path / "utf8.csv"
    data.write_bytes(csv_bytes(rows))
    code, errors, _ = run_cli(["prepare", str(write_config(tmp_path, data))], capsys)
    assert code == 0 and not errors
    m = manifest_of(tmp_path)
    report = reported_rows(m)
    assert set(report) == {2, 4} and m["featurized"] == len(GOOD)  # rows in = prepared + reported
    assert "field 'smiles'" in report[2] and "not valid UTF-8" in report[2] and "ff" in report[2]
    assert "field 'y'" in report[4] and "not valid UTF-8" in report[4]


def test_list_where_a_scalar_belongs_is_reported_per_row(ray_cluster, tmp_path, capsys):
    # a label column holding lists: every row reported, nothing valid left -> one line and the report
    data = write_parquet(tmp_path / "lists.parquet", GOOD, [[1.0, 2.0]] * len(GOOD))
    code, errors, err = run_cli(["prepare", str(write_config(tmp_path, data))], capsys)
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    assert f"{len(GOOD)} rows, {len(GOOD)} skipped" in errors[0]
    report = reported_rows(manifest_of(tmp_path))
    assert len(report) == len(GOOD) and all("field 'y'" in r and "list" in r for r in report.values())


def test_smiles_column_of_lists_is_reported_per_row(ray_cluster, tmp_path, capsys):
    data = write_parquet(tmp_path / "smiles_lists.parquet", [[s] for s in GOOD], [1.0] * len(GOOD))
    code, errors, _ = run_cli(["prepare", str(write_config(tmp_path, data))], capsys)
    assert code == 2 and len(errors) == 1
    report = reported_rows(manifest_of(tmp_path))
    assert len(report) == len(GOOD) and all("field 'smiles'" in r for r in report.values())


def test_unloadable_checkpoint_is_one_line_for_predict(ray_cluster, trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    broken = tmp_path / "checkpoint"
    shutil.copytree(Path(run_dir) / "checkpoint", broken)
    (broken / "model.pt").write_bytes(b"these are not weights")
    inputs = tmp_path / "in.csv"
    inputs.write_text("smiles\nCCO\n")
    code, errors, err = run_cli(["predict", str(broken), str(inputs), "--output", str(tmp_path / "p.parquet")], capsys)
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    assert str(broken) in errors[0] and "cannot be loaded" in errors[0]


def test_predict_reports_a_non_utf8_row_and_predicts_the_rest(ray_cluster, trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    inputs = tmp_path / "in.csv"
    inputs.write_bytes(b"smiles\nCCO\nC\xffC\nc1ccccc1\n")
    out = tmp_path / "p.parquet"
    code, errors, _ = run_cli(["predict", str(run_dir), str(inputs), "--output", str(out)], capsys)
    assert code == 0 and not errors
    table = pq.read_table(out).to_pydict()
    assert table["error"][0] is None and table["error"][2] is None
    assert "not valid UTF-8" in table["error"][1]


def test_debug_flag_shows_the_traceback(tmp_path, capsys):
    bad = tmp_path / "cfg.yaml"
    bad.write_text("data: [unclosed\n")  # not YAML: a user error, one line
    code, errors, err = run_cli(["prepare", str(bad)], capsys)
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    with pytest.raises(ConfigError):  # --debug: the exception itself, traceback and all
        cli.main(["--debug", "prepare", str(bad)])


def test_errors_raised_inside_ray_tasks_are_unwrapped_to_their_cause(ray_cluster):
    import ray

    @ray.remote(num_cpus=0)
    def fails(kind: str):
        raise (ValueError("bad label in row 7") if kind == "user" else ZeroDivisionError("division by zero"))

    for kind, expected, code in (("user", "bad label in row 7", 2), ("bug", "ZeroDivisionError: division by zero", 1)):
        with pytest.raises(ray.exceptions.RayTaskError) as info:
            ray.get(fails.remote(kind))
        assert one_line(info.value) == expected and exit_code(info.value) == code

