import pytest

from conveyor.errors import PipelineDefinitionError
from conveyor.pipeline import Pipeline, step


@step
def first(context):  # type: ignore[no-untyped-def]
    return 1


@step
def second(context, first):  # type: ignore[no-untyped-def]
    return first + 1


@step
def third(context, first):  # type: ignore[no-untyped-def]
    return first + 2


@step
def last(context, second, third):  # type: ignore[no-untyped-def]
    return second + third


def test_diamond_order_ready_steps_and_result() -> None:
    pipeline = Pipeline(
        "d", "1", {first: [], second: [first], third: [first], last: [second, third]}
    )
    assert pipeline.order[0] == "first" and pipeline.order[-1] == "last"
    assert pipeline.ready_steps(set(), set()) == ["first"]
    assert pipeline.ready_steps({"first"}, {"second"}) == ["third"]
    assert pipeline.final_steps == ("last",)
    assert pipeline.final_result({"last": 5}) == 5


def test_several_final_steps_give_a_mapping() -> None:
    pipeline = Pipeline("fan", "1", {first: [], second: [first], third: [first]})
    assert pipeline.final_result({"first": 1, "second": 2, "third": 3}) == {"second": 2, "third": 3}


def test_cycles_unknown_steps_and_wrong_signatures_are_refused() -> None:
    @step(name="x")
    def x(context, y):  # type: ignore[no-untyped-def]
        return y

    @step(name="y")
    def y(context, x):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(PipelineDefinitionError, match="cycle"):
        Pipeline("c", "1", {x: [y], y: [x]})
    with pytest.raises(PipelineDefinitionError, match="not steps of this pipeline"):
        Pipeline("u", "1", {second: [first]})
    with pytest.raises(PipelineDefinitionError, match=r"must take parameters \(context, third\)"):
        Pipeline("s", "1", {first: [], third: [first], second: [third]})
