"""The `Ready` condition built from findings, and how `status.conditions` changes:
lastTransitionTime moves only when the status flips; nothing changes when nothing did."""

from __future__ import annotations

from jaring.operator.validation import Condition, Finding, Severity, conditions, ready_condition

BAD = Finding(field="spec.config.mode", message="macvlan: 'x' is not one of [...]")
NOTE = Finding(field="spec.config.name", message="CNI name 'a' differs", severity=Severity.WARNING)


def test_valid_invalid_warned_and_on_disk() -> None:
    assert ready_condition((), generation=2) == Condition(
        status=True, reason="Valid", message="configuration is valid", observed_generation=2
    )
    assert ready_condition((BAD, NOTE), generation=1) == Condition(
        status=False,
        reason="InvalidConfig",
        message="spec.config.mode: macvlan: 'x' is not one of [...]",
        observed_generation=1,
    )
    warned = ready_condition((NOTE,), generation=None)
    assert (warned.status, warned.reason) == (True, "ValidWithWarnings")
    assert warned.message == "spec.config.name: CNI name 'a' differs"
    assert ready_condition((), generation=1, uses_disk_config=True).reason == "OnDiskConfig"


def test_all_errors_are_in_the_message() -> None:
    other = Finding(field="spec.config.mtu", message="bridge: '1' is not of type 'integer'")
    cond = ready_condition((BAD, other), generation=1)
    assert cond.message == f"{BAD}; {other}"


def test_first_condition_is_added_next_to_other_types() -> None:
    foreign = {"type": "Synced", "status": "True"}
    new, changed = conditions([foreign], ready_condition((), generation=1), now="T1")
    assert changed
    assert new == [
        foreign,
        {
            "type": "Ready",
            "status": "True",
            "reason": "Valid",
            "message": "configuration is valid",
            "lastTransitionTime": "T1",
            "observedGeneration": 1,
        },
    ]


def test_same_verdict_again_changes_nothing() -> None:
    ready = ready_condition((), generation=1)
    first, _ = conditions(None, ready, now="T1")
    again, changed = conditions(first, ready, now="T2")
    assert not changed
    assert again == first


def test_flip_moves_the_transition_time_and_a_new_message_does_not() -> None:
    first, _ = conditions(None, ready_condition((BAD,), generation=1), now="T1")
    other = Finding(field="spec.config.mtu", message="bad")
    second, changed = conditions(first, ready_condition((other,), generation=2), now="T2")
    assert changed
    assert second[0]["lastTransitionTime"] == "T1"
    assert second[0]["message"] == str(other)
    assert second[0]["observedGeneration"] == 2
    third, changed = conditions(second, ready_condition((), generation=3), now="T3")
    assert changed
    assert third[0]["status"] == "True"
    assert third[0]["lastTransitionTime"] == "T3"


def test_garbage_in_old_conditions_is_dropped() -> None:
    new, changed = conditions(
        ["junk", {"type": "Ready", "status": "True"}], ready_condition((), generation=None), now="T"
    )
    assert changed
    assert new == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Valid",
            "message": "configuration is valid",
            "lastTransitionTime": "T",
        }
    ]
    assert conditions("not a list", ready_condition((), generation=None), now="T")[1]
