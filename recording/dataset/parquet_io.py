"""Episode parquet files: Arrow schema from the features, writing one episode, reading it back.

Matches what LeRobot 0.3.3 writes (docs/lerobot_v21.md §4): vectors as ``fixed_size_list``, scalars
as plain columns, the HF ``Features`` JSON in the schema metadata, SNAPPY, one row group.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recording.dataset.errors import DatasetError

_ARROW = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "bool": pa.bool_(),
}


def column_features(features: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The features stored as parquet columns (all but video), in info.json order."""
    return {k: v for k, v in features.items() if v.get("dtype") not in ("video", "image", "string")}


def arrow_type(spec: dict[str, Any]) -> pa.DataType:
    """Arrow type of a numeric feature: scalar for shape [1], fixed_size_list otherwise."""
    dtype = spec["dtype"]
    if dtype not in _ARROW:
        raise ValueError(f"dtype {dtype!r} cannot be stored as a parquet column")
    shape = list(spec["shape"])
    if shape == [1]:
        return _ARROW[dtype]
    if len(shape) != 1:
        raise ValueError(f"shape {shape} not supported (only [n])")
    return pa.list_(_ARROW[dtype], shape[0])


def _hf_feature(spec: dict[str, Any]) -> dict[str, Any]:
    value = {"dtype": spec["dtype"], "_type": "Value"}
    if list(spec["shape"]) == [1]:
        return value
    return {"feature": value, "length": int(spec["shape"][0]), "_type": "Sequence"}


def arrow_schema(features: dict[str, dict[str, Any]]) -> pa.Schema:
    """Schema of an episode file, with the HuggingFace ``datasets`` metadata LeRobot writes."""
    cols = column_features(features)
    hf = {"info": {"features": {k: _hf_feature(v) for k, v in cols.items()}}}
    return pa.schema(
        [pa.field(k, arrow_type(v)) for k, v in cols.items()],
        metadata={b"huggingface": json.dumps(hf).encode()},
    )


def to_arrow_column(values: np.ndarray, spec: dict[str, Any]) -> pa.Array:
    """An (L,) or (L, n) numpy array as the Arrow column of ``spec``."""
    typ = arrow_type(spec)
    arr = np.ascontiguousarray(values, dtype=spec["dtype"])
    if pa.types.is_fixed_size_list(typ):
        n = typ.list_size
        if arr.ndim != 2 or arr.shape[1] != n:
            raise ValueError(f"expected shape (L, {n}), got {arr.shape}")
        return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1), type=typ.value_type), type=typ)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"expected shape (L,), got {arr.shape}")
    return pa.array(arr, type=typ)


def write_episode_parquet(
    path: Path, columns: dict[str, np.ndarray], features: dict[str, dict[str, Any]]
) -> None:
    """Write one episode file and fsync it."""
    schema = arrow_schema(features)
    arrays = [to_arrow_column(columns[f.name], features[f.name]) for f in schema]
    table = pa.Table.from_arrays(arrays, schema=schema)
    pq.write_table(table, str(path), compression="snappy", row_group_size=max(table.num_rows, 1))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_episode_table(path: Path) -> pa.Table:
    """Read an episode file (DatasetError names file and reason when it is missing or corrupt)."""
    try:
        return pq.read_table(str(path))
    except FileNotFoundError:
        raise DatasetError(f"{path}: missing") from None
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"{path}: cannot read parquet ({e})") from None


def column_to_numpy(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy: (L,) for scalars, (L, n) for fixed/variable-size lists of equal length."""
    col = table.column(name).combine_chunks()
    typ = col.type
    if pa.types.is_fixed_size_list(typ) or pa.types.is_list(typ) or pa.types.is_large_list(typ):
        if col.null_count:
            raise ValueError(f"column {name!r} has null rows")
        lengths = np.asarray(pc.list_value_length(col))
        if len(lengths) and (lengths != lengths[0]).any():
            raise ValueError(f"column {name!r} has rows of different lengths")
        n = int(lengths[0]) if len(lengths) else 0
        flat = col.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(col), n)
    if col.null_count:
        raise ValueError(f"column {name!r} has null rows")
    return col.to_numpy(zero_copy_only=False)
