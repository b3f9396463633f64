"""A new-style service graph for the Ray Serve tests (``ray_v2_svc:Shout``, built as a bento).

``Shout`` (the root, in the API server) -> ``Words`` -> ``Letters``: the root reaches a
dependency from the ingress, and ``Words`` reaches its own from a replica, both through
Ray deployment handles.
"""
from __future__ import annotations

import os

import bentolite as bentoml
from bentolite.exceptions import BadInput


@bentoml.service(resources={"cpu": 0.1})
class Letters:
    @bentoml.api
    def upper(self, word: str) -> str:
        if "!" in word:
            raise ValueError(f"no letter '!' in {word!r}")
        if not word.isprintable():
            raise BadInput("the word is not printable", field="word")
        return word.upper()


@bentoml.service(name="Words", resources={"cpu": 0.1})
class Words:
    letters = bentoml.depends(Letters)

    @bentoml.api
    def shout(self, text: str) -> dict[str, object]:
        """A sync API: each dependency call blocks on a Ray handle from the model thread."""
        return {"text": " ".join(self.letters.upper(word) for word in text.split()),
                "pid": os.getpid()}


@bentoml.service(resources={"cpu": 0.1})
class Shout:
    words = bentoml.depends(Words)

    @bentoml.api
    async def shout(self, text: str, times: int = 1) -> dict[str, object]:
        answer = await self.words.to_async.shout(text)
        return {"text": " ".join([answer["text"]] * times), "words_pid": answer["pid"],
                "pid": os.getpid()}
