"""bentolite.picklable_model still saves, loads and runs any cloudpickle-able object."""
from __future__ import annotations

import bentolite


class Doubler:
    def __call__(self, values, factor=2):
        return [v * factor for v in values]

    def total(self, values):
        return sum(values)


def test_round_trip_and_runnable(store_home):
    saved = bentolite.picklable_model.save_model(
        "doubler", Doubler(), signatures={"__call__": {"batchable": True}, "total": {}}
    )
    got = bentolite.picklable_model.get("doubler")
    assert got == saved and got.info.module == "bentoml.picklable_model"
    assert got.info.context.framework_name == "cloudpickle"
    assert bentolite.picklable_model.load_model(got)([1, 2]) == [2, 4]
    runnable = bentolite.picklable_model.get_runnable(got.with_options(partial_kwargs={"__call__": {"factor": 3}}))()
    assert runnable.__call__([1, 2]) == [3, 6]
    assert runnable.__call__([1, 2], factor=10) == [10, 20]
    assert runnable.total([1, 2, 3]) == 6
    assert type(runnable).bentoml_runnable_methods__["__call__"].config.batchable is True
