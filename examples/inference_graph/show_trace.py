"""Print the span waterfall of the last API request recorded in a span file.

    BENTOLITE_TRACE_FILE=/tmp/spans.jsonl \\
    BENTOLITE_CONFIG_OPTIONS="tracing.exporter_type=in_memory tracing.sample_rate=1.0" \\
        bentolite serve service:svc
    curl -X POST --data 'the quick brown fox' http://127.0.0.1:3000/classify_generated_texts
    python show_trace.py /tmp/spans.jsonl
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from bentolite.tracing import read_span_file

__all__ = ["waterfall", "main"]


def waterfall(spans: list[dict[str, Any]], width: int = 48) -> list[str]:
    """One line per span of the last traced API request: name, kind, service and a bar."""
    roots = [s for s in spans if s["kind"] == "SERVER" and s["name"].startswith("POST ")]
    if not roots:
        return []
    root = max(roots, key=lambda s: s["start_ns"])
    trace = sorted((s for s in spans if s["trace_id"] == root["trace_id"]),
                   key=lambda s: s["start_ns"])
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in trace:
        children.setdefault(span["parent_span_id"], []).append(span)
    start, total = root["start_ns"], max(root["end_ns"] - root["start_ns"], 1)
    lines = [f"trace {root['trace_id']}  ({total / 1e6:.1f} ms)"]

    def walk(span: dict[str, Any], depth: int) -> None:
        first = int((span["start_ns"] - start) / total * width)
        last = max(int((span["end_ns"] - start) / total * width), first + 1)
        bar = " " * first + "#" * (last - first)
        label = f"{'  ' * depth}{span['name']} [{span['kind'].lower()}, {span['service_name']}]"
        ms = (span["end_ns"] - span["start_ns"]) / 1e6
        lines.append(f"{label:<86} |{bar:<{width}}| {ms:7.1f} ms")
        for child in children.get(span["span_id"], []):
            walk(child, depth + 1)

    walk(root, 0)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("span_file", help="the BENTOLITE_TRACE_FILE the server wrote")
    args = parser.parse_args(argv)
    lines = waterfall(read_span_file(args.span_file))
    if not lines:
        print(f"no API request span in {args.span_file}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
