# TEMPORARY stand-in (not committed): replaced by the typedio branch
from __future__ import annotations
import inspect, json
from typing import Any
from .base import HTTPMessage, IODescriptor
from ..exceptions import BadInput

class TypedInput(IODescriptor[dict]):
    descriptor_id = "bentolite.io.TypedInput"
    _mime_type = "application/json"
    def __init__(self, func, *, input_spec=None):
        self.params = [p for p in list(inspect.signature(func).parameters.values())[1:] if p.name not in ("ctx", "context")]
    def input_type(self):
        return {p.name: p.annotation for p in self.params}
    def _decode(self, msg, field):
        data = json.loads(msg.body or b"{}")
        out = {}
        for p in self.params:
            if p.name in data: out[p.name] = data[p.name]
            elif p.default is not p.empty: out[p.name] = p.default
            else: raise BadInput("missing", field=f"body.{p.name}")
        return out
    def encode(self, obj, field="output"):
        return HTTPMessage(json.dumps(obj).encode(), {"Content-Type": "application/json"})

class TypedOutput(IODescriptor[Any]):
    descriptor_id = "bentolite.io.TypedOutput"
    _mime_type = "application/json"
    def __init__(self, func, *, output_spec=None): pass
    def input_type(self): return Any
    def _decode(self, msg, field): return json.loads(msg.body)
    def encode(self, obj, field="output"):
        if isinstance(obj, str): return HTTPMessage(obj.encode(), {"Content-Type": "text/plain"})
        return HTTPMessage(json.dumps(obj).encode(), {"Content-Type": "application/json"})
    def is_streaming(self, obj): return hasattr(obj, "__aiter__")
    async def encode_stream(self, obj):
        async for x in obj: yield str(x).encode()
