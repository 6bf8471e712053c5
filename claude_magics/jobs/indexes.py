"""A DataFrame's index, stored with its job and given back exactly, in another kernel too.

    blob = encode_index(df.index)          # bytes for the job store, or None
    decode_index(blob)                     # the same index: type, dtype, names, freq, values

``attach(ID).result()`` in a fresh kernel has no frame to take the index from, so the job keeps
it. Each kind of index is kept as what defines it, never as text to be parsed back: a
``RangeIndex`` as start, stop and step; a ``MultiIndex`` as its levels (each an index, kept the
same way) and codes; a ``CategoricalIndex`` as its categories, codes and order; datetimes as
their instants (int64 since the epoch, in UTC) with the dtype's unit and time zone and the
frequency, so an hourly index across a daylight-saving change comes back with the same
instants and offsets; timedeltas, periods and intervals likewise; numbers as their bytes (NaN,
infinities and -0.0 included); strings and mixed objects as JSON with a tag for what JSON does
not have (tuples, timestamps, big integers, NaN).

An index is stored only if it comes back exactly (checked once, when it is stored): anything
else (an object index holding objects of other kinds) is not stored, and the caller says so.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["decode_index", "encode_index"]

_VERSION = 2


class _Inexact(Exception):
    """This index (or a value in it) cannot be kept exactly."""


def encode_index(index: pd.Index) -> bytes | None:
    """``index`` as bytes that :func:`decode_index` turns back into an equal index (same
    class, dtype, names, frequency and values), or None when it cannot be kept exactly."""
    try:
        blob = orjson.dumps({"v": _VERSION, "index": _node(index)})
        back = decode_index(blob)
    except (_Inexact, TypeError, ValueError, OverflowError, orjson.JSONEncodeError):
        return None
    return blob if _same(index, back) else None


def decode_index(blob: bytes) -> pd.Index:
    """The index :func:`encode_index` stored (or one stored by earlier versions)."""
    stored = orjson.loads(blob)
    if stored.get("v") != _VERSION:
        return _legacy(stored)
    return _index(stored["index"])


# --------------------------------------------------------------------------------------------
# Encoding


def _bytes(values: Any, dtype: Any = None) -> str:
    """A numpy array's little-endian bytes, as base64 text."""
    import numpy as np

    array = np.asarray(values, dtype=dtype)
    return base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode()


def _node(index: pd.Index) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    names = [_value(name) for name in index.names]
    if isinstance(index, pd.MultiIndex):
        return {
            "kind": "multi",
            "levels": [_node(level) for level in index.levels],
            "codes": [_bytes(codes, "<i8") for codes in index.codes],
            "names": names,
        }
    name = names[0]
    dtype = str(index.dtype)
    if isinstance(index, pd.RangeIndex):
        return {
            "kind": "range",
            "start": index.start,
            "stop": index.stop,
            "step": index.step,
            "name": name,
        }
    if isinstance(index, pd.CategoricalIndex):
        return {
            "kind": "categorical",
            "categories": _node(index.categories),
            "codes": _bytes(index.codes, "<i8"),
            "ordered": bool(index.ordered),
            "name": name,
        }
    if isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex)):
        freq = index.freqstr  # None when the index has no frequency
        # asi8: the instants as integers in the dtype's unit, in UTC for a zoned index, with
        # NaT as the smallest int64: nothing is lost, whatever the zone's offsets.
        return {
            "kind": "instants",
            "dtype": dtype,
            "i8": _bytes(index.asi8),
            "freq": freq,
            "name": name,
        }
    if isinstance(index, pd.PeriodIndex):
        return {"kind": "periods", "dtype": dtype, "i8": _bytes(index.asi8), "name": name}
    if isinstance(index, pd.IntervalIndex):
        return {
            "kind": "intervals",
            "left": _node(index.left),
            "right": _node(index.right),
            "closed": index.closed,
            "name": name,
        }
    if isinstance(index.dtype, np.dtype) and index.dtype.kind in "biufc":
        return {"kind": "numbers", "dtype": dtype, "data": _bytes(index.to_numpy()), "name": name}
    return {
        "kind": "values",
        "dtype": dtype,
        "values": [_value(v) for v in index.tolist()],
        "name": name,
    }


def _value(value: Any) -> Any:
    """One label as JSON, tagged where JSON has no such value; raises :class:`_Inexact` for
    what cannot be kept exactly."""
    import numpy as np
    import pandas as pd

    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.generic):
        value = value.item()
        if not isinstance(value, (bool, int, float, complex, str, bytes)):
            raise _Inexact
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else {"int": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, tuple):
        return {"tuple": [_value(v) for v in value]}
    if value is pd.NaT:
        return {"nat": True}
    if value is pd.NA:
        return {"na": True}
    if isinstance(value, pd.Timestamp):
        return {"timestamp": [value.value, None if value.tz is None else str(value.tz)]}
    if isinstance(value, pd.Timedelta):
        return {"timedelta": value.value}
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    raise _Inexact(type(value).__name__)


# --------------------------------------------------------------------------------------------
# Decoding


def _array(text: str, dtype: Any) -> Any:
    import numpy as np

    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype).newbyteorder("<"))


def _index(node: dict[str, Any]) -> pd.Index:
    import numpy as np
    import pandas as pd
    from pandas.api.types import pandas_dtype

    kind = node["kind"]
    if kind == "multi":
        return pd.MultiIndex(
            levels=[_index(level) for level in node["levels"]],
            codes=[_array(codes, "i8") for codes in node["codes"]],
            names=[_label(name) for name in node["names"]],
            verify_integrity=False,
        )
    name = _label(node["name"])
    if kind == "range":
        return pd.RangeIndex(node["start"], node["stop"], node["step"], name=name)
    if kind == "categorical":
        categories = _index(node["categories"])
        values = pd.Categorical.from_codes(
            _array(node["codes"], "i8"), dtype=pd.CategoricalDtype(categories, node["ordered"])
        )
        return pd.CategoricalIndex(values, name=name)
    if kind == "instants":
        dtype = pandas_dtype(node["dtype"])
        unit = np.datetime_data(getattr(dtype, "base", dtype))[0]
        if isinstance(dtype, pd.DatetimeTZDtype):
            unit = dtype.unit
        stamps = _array(node["i8"], "i8")
        if node["dtype"].startswith("timedelta"):
            return pd.TimedeltaIndex(stamps.view(f"m8[{unit}]"), freq=node["freq"], name=name)
        naive = pd.DatetimeIndex(stamps.view(f"M8[{unit}]"), name=name)
        zone = getattr(dtype, "tz", None)
        dated = naive.tz_localize("UTC").tz_convert(zone) if zone is not None else naive
        return pd.DatetimeIndex(dated, freq=node["freq"], name=name)
    if kind == "periods":
        dtype = pandas_dtype(node["dtype"])
        values = pd.arrays.PeriodArray(_array(node["i8"], "i8").copy(), dtype=dtype)
        return pd.PeriodIndex(values, name=name)
    if kind == "intervals":
        return pd.IntervalIndex.from_arrays(
            _index(node["left"]), _index(node["right"]), closed=node["closed"], name=name
        )
    if kind == "numbers":
        return pd.Index(_array(node["data"], node["dtype"]).copy(), name=name)
    if kind == "values":
        values = np.empty(len(node["values"]), dtype=object)
        for i, value in enumerate(node["values"]):  # one by one: tuples stay tuples
            values[i] = _label(value)
        dtype = node["dtype"]
        return pd.Index(
            values, dtype=object if dtype == "object" else dtype, name=name, tupleize_cols=False
        )
    raise ValueError(f"unknown stored index kind {kind!r}")


def _label(value: Any) -> Any:
    import pandas as pd

    if not isinstance(value, dict):
        return value
    ((tag, data),) = value.items()
    if tag == "tuple":
        return tuple(_label(v) for v in data)
    if tag == "int":
        return int(data)
    if tag == "float":
        return float(data)
    if tag == "nat":
        return pd.NaT
    if tag == "na":
        return pd.NA
    if tag == "timestamp":
        nanoseconds, zone = data
        stamp = pd.Timestamp(nanoseconds, unit="ns")
        return stamp if zone is None else stamp.tz_localize("UTC").tz_convert(zone)
    if tag == "timedelta":
        return pd.Timedelta(data, unit="ns")
    if tag == "datetime":
        return dt.datetime.fromisoformat(data)
    if tag == "date":
        return dt.date.fromisoformat(data)
    if tag == "decimal":
        return decimal.Decimal(data)
    if tag == "bytes":
        return base64.b64decode(data)
    raise ValueError(f"unknown stored label tag {tag!r}")


def _same(index: pd.Index, back: pd.Index) -> bool:
    """Whether ``back`` is ``index``: class, dtype, names, frequency, every value."""
    import pandas as pd

    try:
        pd.testing.assert_index_equal(
            index, back, exact=True, check_names=True, check_exact=True, check_categorical=True
        )
    except AssertionError:
        return False
    if getattr(index, "freq", None) != getattr(back, "freq", None):
        return False
    if isinstance(index, pd.MultiIndex):
        return all(_same(a, b) for a, b in zip(index.levels, back.levels, strict=True))
    if isinstance(index.dtype, pd.CategoricalDtype):
        return _same(index.categories, back.categories)
    if str(index.dtype) == "object":
        # Equal values of other kinds (1, 1.0 and True are equal to pandas) are not the same.
        return [type(v) for v in index] == [type(v) for v in back]
    return True


def _legacy(stored: dict[str, Any]) -> pd.Index:
    """An index as earlier versions stored it: values as JSON, names, a dtype name."""
    import pandas as pd

    values = stored["values"]
    names = stored["names"]
    if stored.get("multi"):
        return pd.MultiIndex.from_tuples([tuple(v) for v in values], names=names)
    dtype = str(stored.get("dtype", ""))
    if dtype.startswith("datetime64"):
        return pd.DatetimeIndex(pd.to_datetime(values), name=names[0])
    if dtype.startswith("timedelta64"):
        return pd.TimedeltaIndex(pd.to_timedelta(values), name=names[0])
    return pd.Index(values, name=names[0])
