"""A projection whose tables changed shape (a new ``version``) is rebuilt from the log on
first use, instead of failing on tables of the old shape."""

from __future__ import annotations

from timeline import transfer
from timeline.projections import Developments
from timeline.projector import Projector, differences


def test_tables_of_an_older_version_are_rebuilt_from_the_log(chronicle):
    with transfer.SEED.open(encoding="utf-8") as lines:
        transfer.import_commands(chronicle, transfer.read_lines(lines), recorded_by="seed")
    projector = Projector(chronicle, ["developments"])
    projector.catch_up()
    (developments,) = projector.projections
    # As an older version left them: rows with no tracking under this version's name.
    developments.view.forget(Developments.tracking_key())
    developments.view.execute(["DELETE FROM {history}"], developments.tables)
    projector.close()

    upgraded = Projector(chronicle, ["developments"])
    assert upgraded.position() == 0  # dropped and recreated, empty
    upgraded.catch_up()
    assert upgraded.lag() == 0
    assert upgraded.projections[0].select("SELECT COUNT(*) AS n FROM {history}")[0]["n"] == 30
    upgraded.close()
    assert differences(chronicle, ["developments"]) == []
