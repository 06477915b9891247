"""Turning values into one JSON line that Cloud Logging parses: timestamps, redaction, safe serialization.

Speed matters (every log line of every request goes through here), so lines are assembled from
pre-serialized fragments by string concatenation and only the parts that change are encoded, with
the C encoder of the json module. Nothing here raises on user data: a value json cannot encode is
rendered by `fallback`, and a structure that still fails (a cycle) is rendered with repr.
"""

from __future__ import annotations

import sys
import time

_time_ns = time.time_ns

try:  # the C accelerator of the json package, without importing json (which pulls in re and enum)
    from _json import encode_basestring_ascii as escape  # str -> quoted JSON string
    from _json import make_encoder
except ImportError:  # an interpreter without it
    from json.encoder import encode_basestring_ascii as escape

    make_encoder = None

REDACTED = "[REDACTED]"
# Cloud Logging (and with_monitoring) own these top-level fields; extra data with the same key is renamed.
RESERVED = frozenset({
    "severity", "message", "time", "timestamp", "httpRequest", "@type", "serviceContext", "context",
    "logging.googleapis.com/trace", "logging.googleapis.com/spanId", "logging.googleapis.com/trace_sampled",
    "logging.googleapis.com/labels", "logging.googleapis.com/sourceLocation", "logging.googleapis.com/operation",
    "logging.googleapis.com/insertId", "gcfkit_metrics", "cold_start",
    "debug_sampled",
})
_MAX_REPR = 500



def as_mapping(value: object) -> dict | None:
    """The fields of a dataclass, pydantic model or namedtuple as a dict (so they are redacted too), else None."""
    as_dict = getattr(value, "model_dump", None) or getattr(value, "_asdict", None)
    if callable(as_dict) and not isinstance(value, type):
        try:
            mapping = as_dict()
        except Exception:
            return None
        return mapping if isinstance(mapping, dict) else None
    dataclasses = sys.modules.get("dataclasses")  # only if the application already uses dataclasses
    if dataclasses is not None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    return None


def fallback(value: object) -> object:
    """`default=` hook for json: what to write for a value json does not know."""
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    iso = getattr(value, "isoformat", None)  # datetime, date, time, pendulum, ...
    if callable(iso):
        try:
            return iso()
        except Exception:
            pass
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    mapping = as_mapping(value)
    if mapping is not None:
        return mapping
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} with a broken __repr__>"
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "..."


# One C encoder, built once (json.dumps builds a new one per call). No cycle check: a cycle raises
# RecursionError, caught below. NaN/Infinity are not JSON: they make encode() retry with them as strings.
if make_encoder is not None:
    _c_encode = make_encoder(None, fallback, escape, None, ":", ",", False, False, False)
else:
    import json

    _c_encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=fallback, allow_nan=False,
                                 check_circular=False).iterencode


def encode(value: object) -> str:
    """JSON for any value; never raises."""
    try:
        return "".join(_c_encode(value, 0))
    except ValueError:
        try:
            return "".join(_c_encode(_finite(value, 0), 0))
        except Exception as exc:
            return _unserializable(value, exc)
    except Exception as exc:  # a cycle, unhashable keys, a broken __repr__, ...
        return _unserializable(value, exc)


def _unserializable(value: object, exc: Exception) -> str:
    try:
        return escape(f"<unserializable {type(value).__name__}: {type(exc).__name__}> {fallback(value)}")
    except Exception:
        return '"<unserializable>"'


def _finite(value: object, depth: int) -> object:
    if isinstance(value, float) and value - value != 0.0:  # nan, inf, -inf
        return repr(value)
    if depth > 64:
        return value
    if isinstance(value, dict):
        return {k: _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, depth + 1) for v in value]
    return value


def number(value: float) -> str:
    """A JSON number (non-finite floats as strings, which is what Cloud Logging keeps of them anyway)."""
    text = repr(value)
    return text if value - value == 0 else '"' + text + '"'


PLAIN, SENSITIVE, RESERVED_KEY = 0, 1, 2


class Redactor:
    """Replaces the values of sensitive keys, at any depth, by "[REDACTED]"."""

    def __init__(self, keys: frozenset[str]):
        self.keys = keys
        self.suffixes = tuple("_" + k for k in keys)
        self.verdicts: dict[str, int] = {}  # key -> PLAIN / SENSITIVE / RESERVED_KEY, bounded below

    def classify(self, key: object) -> int:
        verdict = self.verdicts.get(key)  # type: ignore[arg-type]
        if verdict is None:
            name = str(key).lower().replace("-", "_")
            verdict = SENSITIVE if name in self.keys or name.endswith(self.suffixes) else \
                RESERVED_KEY if key in RESERVED else PLAIN
            if len(self.verdicts) < 4096 and isinstance(key, str):
                self.verdicts[key] = verdict
        return verdict

    def sensitive(self, key: object) -> bool:
        return self.classify(key) == SENSITIVE

    def fields(self, data: dict) -> str:
        """`data` as top-level JSON members (',"k":v,...'): sensitive values redacted at any depth, keys that
        Cloud Logging or gcfkit own renamed with a trailing '_'. The common flat cases skip the encoder."""
        out = []
        verdicts = self.verdicts
        for key, value in data.items():
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = self.classify(key)
            if verdict == SENSITIVE:
                out.append(escape(str(key)) + ':"' + REDACTED + '"')
                continue
            kind = type(value)
            if kind is str:
                rendered = escape(value)
            elif kind is int:
                rendered = repr(value)
            elif kind is float:
                rendered = number(value)
            elif value is None or kind is bool:
                rendered = "null" if value is None else "true" if value else "false"
            else:
                rendered = encode(self.value(value))
            name = key if type(key) is str else str(key)
            out.append(escape(name + "_" if verdict == RESERVED_KEY else name) + ":" + rendered)
        return "," + ",".join(out) if out else ""

    def mapping(self, data: dict) -> dict:
        """A copy of `data` with sensitive values replaced; `data` itself is returned when nothing changes."""
        return self.value(data)  # type: ignore[return-value]

    def value(self, value: object, depth: int = 0) -> object:
        if depth > 32:  # a cycle or absurd nesting: stop walking, the encoder renders what is left
            return value
        if isinstance(value, dict):
            out = None
            for key, item in value.items():
                new = REDACTED if self.classify(key) == SENSITIVE else self.value(item, depth + 1)
                if new is not item:
                    if out is None:
                        out = dict(value)
                    out[key] = new
            return value if out is None else out
        if isinstance(value, (list, tuple)):
            items = [self.value(item, depth + 1) for item in value]
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        if isinstance(value, (str, int, float, type(None))):
            return value
        mapping = as_mapping(value)  # a dataclass / model: redact its fields like a dict's
        return value if mapping is None else self.value(mapping, depth + 1)


class Clock:
    """RFC 3339 UTC timestamps with microseconds; the formatted second is cached (lines come in bursts)."""

    __slots__ = ("_ns_prefix", "_ns_second", "_prefix", "_second")

    def __init__(self):
        self._second = -1
        self._prefix = ""
        self._ns_second = ""
        self._ns_prefix = ""

    def now(self) -> str:
        """The current time. Digits of time_ns() sliced: the cheapest way to microseconds in Python."""
        digits = str(_time_ns())
        if digits[:10] != self._ns_second or len(digits) != 19:
            return self._new_second(digits)
        return f"{self._ns_prefix}{digits[10:16]}Z"

    def _new_second(self, digits: str) -> str:
        if len(digits) != 19:  # seconds have 10 digits from 2001 to 2286
            return self.stamp(time.time())
        self._ns_prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(int(digits[:10])))
        self._ns_second = digits[:10]
        return f"{self._ns_prefix}{digits[10:16]}Z"

    def stamp(self, now: float) -> str:
        """A given time (a buffered line keeps the time it was logged at)."""
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        # %-format: twice as fast as an f-string here, and %d truncates (never rounds up to 1000000)
        return "%s.%06dZ" % (self._prefix, (now - second) * 1e6)  # noqa: UP031


def source_location(code, line: int) -> str:
    """The `logging.googleapis.com/sourceLocation` field (without the leading comma) for a code object."""
    return ('"logging.googleapis.com/sourceLocation":{"file":' + escape(code.co_filename) + ',"line":"'
            + str(line) + '","function":' + escape(getattr(code, "co_qualname", code.co_name)) + "}")
