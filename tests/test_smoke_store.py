from events.errors import Conflict


def test_register_twice_same_is_noop_other_is_conflict(chronicle):
    details = {"id": "armenia", "name": "Armenia", "kind": "state"}
    first = chronicle.register_actor(details, recorded_by="t")
    again = chronicle.register_actor(details, recorded_by="t")
    assert first.created and first.position
    assert not again.created and again.position is None
    assert chronicle.recorder.max_notification_id() == first.position
    try:
        chronicle.register_actor(details | {"name": "Armenien"}, recorded_by="t")
    except Conflict:
        pass
    else:
        raise AssertionError("expected a conflict")
