"""Routing as data: weighted sticky splits, rules with the fixed operator table, and config
checks; then the same through the API (PUT routing, predict answers from the chosen arm)."""

from __future__ import annotations

import pytest

from conveyor.serving.routing import (
    OPERATORS,
    RoutingConfigError,
    choose_arm,
    parse_config,
    unit_hash,
)

AB = {
    "model": "heart",
    "arms": [
        {"name": "a", "target": "champion", "weight": 50},
        {"name": "b", "target": "challenger", "weight": 50},
    ],
    "salt": "test",
}


def test_fifty_fifty_split_is_even_and_sticky() -> None:
    config = parse_config(AB)
    arms = [choose_arm(config, None, f"user-{n}").name for n in range(4000)]
    share = arms.count("a") / len(arms)
    assert 0.47 <= share <= 0.53, share
    again = [choose_arm(config, None, f"user-{n}").name for n in range(4000)]
    assert again == arms  # the same user always gets the same arm


def test_canary_weights_and_salt() -> None:
    canary = parse_config(
        AB | {"arms": [AB["arms"][0] | {"weight": 90}, AB["arms"][1] | {"weight": 10}]}
    )
    share = sum(choose_arm(canary, None, str(n)).name == "b" for n in range(4000)) / 4000
    assert 0.07 <= share <= 0.13
    assert unit_hash("s1", "k") != unit_hash("s2", "k")
    assert 0 <= unit_hash("s", "k") < 1
    unkeyed = [choose_arm(canary, None, None, chance=lambda: 0.95).name for _ in range(3)]
    assert unkeyed == ["b", "b", "b"]


@pytest.mark.parametrize(
    ("operator", "value", "record", "expected"),
    [
        ("==", 1, {"sex": 1}, "b"),
        ("!=", 1, {"sex": 1}, "a"),
        (">=", 65, {"age": 70}, "b"),
        ("<", 65, {"age": 70}, "a"),
        ("<=", 70, {"age": 70}, "b"),
        (">", 70, {"age": 70}, "a"),
        ("in", ["de", "fr"], {"country": "fr"}, "b"),
        ("not_in", ["de", "fr"], {"country": "fr"}, "a"),
    ],
)
def test_rules_route_as_configured(operator, value, record, expected) -> None:
    field = next(iter(record))
    config = parse_config(
        AB
        | {
            "arms": [AB["arms"][0] | {"weight": 1}, AB["arms"][1] | {"weight": 0}],
            "rules": [{"field": field, "operator": operator, "value": value, "arm": "b"}],
        }
    )
    assert choose_arm(config, record, "anyone").name == expected


def test_rules_on_missing_or_incomparable_fields_do_not_apply() -> None:
    config = parse_config(
        AB
        | {
            "arms": [AB["arms"][0] | {"weight": 1}, AB["arms"][1] | {"weight": 0}],
            "rules": [{"field": "age", "operator": ">", "value": 60, "arm": "b"}],
        }
    )
    assert choose_arm(config, {}, "k").name == "a"
    assert choose_arm(config, {"age": "old"}, "k").name == "a"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arms": []}, "at least one"),
        ({"arms": [{"name": "a", "target": "champion", "weight": -1}]}, "weight must be"),
        ({"arms": [{"name": "a", "target": "champion", "weight": 0}]}, "above 0"),
        ({"arms": [{"name": "a", "target": None}]}, "target must be"),
        ({"rules": [{"field": "age", "operator": "__import__", "value": 1, "arm": "a"}]}, "one of"),
        ({"rules": [{"field": "age", "operator": "==", "value": 1, "arm": "zz"}]}, "name one of"),
        ({"rules": [{"field": "age", "operator": "in", "value": 1, "arm": "a"}]}, "a list"),
        ({"eval": "1+1"}, "unknown routing setting"),
        ({"model": ""}, "model:"),
    ],
)
def test_bad_configs_are_refused_with_the_setting_named(change, message) -> None:
    with pytest.raises(RoutingConfigError, match=message):
        parse_config(AB | change)


def test_only_zero_weight_arms_left_still_answer() -> None:
    from dataclasses import replace

    config = parse_config(AB)
    zero = replace(config, arms=(replace(config.arms[0], weight=0.0),))
    assert choose_arm(zero, None, "anyone").name == "a"


def test_operator_table_is_fixed() -> None:
    assert set(OPERATORS) == {"==", "!=", "<", "<=", ">", ">=", "in", "not_in"}


def test_routing_through_the_api(sqlite_serving, heart_record) -> None:
    serving = sqlite_serving
    rule = {"field": "age", "operator": ">=", "value": 65, "arm": "b"}
    config = AB | {"rules": [rule]}
    response = serving.client.put("/api/v1/endpoints/heart/routing", json=config)
    assert response.status_code == 200, response.text
    assert response.json()["revision"] == 2
    refused = serving.client.put("/api/v1/endpoints/heart/routing", json=AB | {"arms": []})
    assert refused.status_code == 422 and "arms" in refused.json()["error"]["message"]
    serving.service.reloader.refresh()  # what the watcher does within a second
    old = serving.predict(heart_record | {"age": 70}).json()
    assert (old["arm"], old["version"]) == ("b", 2)
    seen = {}
    for user in range(40):
        answer = serving.predict(heart_record, headers={"X-Request-Key": f"u{user}"}).json()
        seen[f"u{user}"] = (answer["arm"], answer["version"])
        assert answer["version"] == {"a": 1, "b": 2}[answer["arm"]]
    assert {arm for arm, _ in seen.values()} == {"a", "b"}
    for user, (arm, _) in list(seen.items())[:10]:
        again = serving.predict(heart_record, params={"key": user}).json()
        assert again["arm"] == arm
    listed = serving.client.get("/api/v1/endpoints").json()["endpoints"]
    heart = next(e for e in listed if e["name"] == "heart")
    assert [(a["name"], a["version"]) for a in heart["arms"]] == [("a", 1), ("b", 2)]
