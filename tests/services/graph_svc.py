"""New-style services for the tests: a root calling two dependencies, one nested.

Every dependency method reports its PID and its start/end times, so tests can tell which
process served a call and whether calls overlapped.
"""
from __future__ import annotations

import asyncio
import os
import pathlib
import time
import typing as t

import bentolite as bentoml

NAP_S = float(os.environ.get("GRAPH_NAP_S", "0.3"))


@bentoml.service
class Leaf:
    @bentoml.api
    def shout(self, text: str) -> str:
        return text.upper()


@bentoml.service(workers=2)
class Generator:
    leaf = bentoml.depends(Leaf)

    @bentoml.api
    def generate(self, sentence: str, suffix: str = "!") -> t.List[t.Dict[str, t.Any]]:
        start = time.time()
        time.sleep(NAP_S)
        return [{"generated_text": sentence + suffix, "pid": os.getpid(), "start": start,
                 "end": time.time()}]

    @bentoml.api
    def loud(self, sentence: str) -> str:
        return self.leaf.shout(sentence)  # nested: Generator's own worker calls Leaf

    @bentoml.api
    def words(self, sentence: str) -> t.Generator[str, None, None]:
        for word in sentence.split():
            yield word + " "


@bentoml.service(resources={"cpu": 1}, traffic={"timeout": 30})
class Scorer:
    @bentoml.api
    async def score(self, sentence: str) -> float:
        await asyncio.sleep(0.01)
        return float(len(sentence))

    @bentoml.api(batchable=True, max_batch_size=16, max_latency_ms=2000)
    def lengths(self, sentences: t.List[str]) -> t.List[t.Any]:
        time.sleep(0.05)  # calls pile up meanwhile and batch together
        return [[len(s), len(sentences), os.getpid()] for s in sentences]

    @bentoml.api
    def pid(self) -> int:
        return os.getpid()


@bentoml.service
class OtherGenerator:
    """A second generator service (seed 003 calls two generators at once)."""

    @bentoml.api
    def generate(self, sentence: str) -> t.List[t.Dict[str, t.Any]]:
        start = time.time()
        time.sleep(NAP_S)
        return [{"generated_text": sentence + "?", "pid": os.getpid(), "start": start,
                 "end": time.time()}]


@bentoml.service(name="graph", image="python:3.11")  # image: ignored locally
class Graph:
    generator = bentoml.depends(Generator)
    other = bentoml.depends(OtherGenerator)
    scorer = bentoml.depends(Scorer)

    @bentoml.api
    async def generate_score(self, original_sentence: str = "I have an idea!",
                             max_length: int = 20) -> t.List[t.Dict[str, t.Any]]:
        results = await asyncio.gather(
            self.generator.to_async.generate(original_sentence, max_length=max_length,
                                             num_return_sequences=1),
            self.generator.to_async.generate(original_sentence, max_length=max_length),
            self.other.to_async.generate(original_sentence, max_length=max_length))
        out = []
        for result in results:
            text = result[0]["generated_text"]
            out.append({"generated": text, "score": await self.scorer.to_async.score(text),
                        "pid": result[0]["pid"], "start": result[0]["start"],
                        "end": result[0]["end"]})
        return out

    @bentoml.api
    def sync_chain(self, sentence: str) -> str:
        return self.generator.loud(sentence)  # a sync API may call sync methods directly

    @bentoml.api
    async def blocking_on_loop(self, sentence: str) -> str:
        return self.generator.loud(sentence)  # wrong: a blocking call on the event loop

    @bentoml.api
    async def lengths(self, sentences: t.List[str]) -> t.List[t.Any]:
        return await self.scorer.to_async.lengths(sentences)

    @bentoml.api
    async def pids(self) -> t.Dict[str, int]:
        return {"api": os.getpid(), "scorer": await self.scorer.to_async.pid()}

    @bentoml.api
    async def words(self, sentence: str) -> t.AsyncGenerator[str, None]:
        async for word in self.generator.to_async.words(sentence):
            yield word

    @bentoml.api
    def add(self, a: int, b: int = 1) -> int:
        return a + b

    @bentoml.api
    def upload(self, doc: pathlib.Path, note: str = "") -> t.Dict[str, t.Any]:
        return {"size": doc.stat().st_size, "path": str(doc), "note": note}
