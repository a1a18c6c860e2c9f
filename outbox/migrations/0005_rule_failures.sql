-- rule_failures keeps each mapping rule that failed on an event, with its
-- error, so that one rule's failure never holds back the others: the
-- activities of the rules that succeed are enqueued with the event, and
-- only the failed rules are mapped again after a fix (Remap).
--
-- events.state stays the one answer to "does this event need an operator":
-- an event is mapping_failed while it has rule failures, or when it could
-- not be mapped at all (events.error alone, no rows here: no interaction to
-- map, or an event stored before this migration, whose rules all count as
-- failed). events.error is a summary of the failures, so the CHECK of
-- 0001 (mapping_failed exactly when error is set) holds unchanged. The
-- triggers below keep the two tables consistent: a failure row only for a
-- mapping_failed event, and no event processed while it has one.
CREATE TABLE rule_failures (
	event_id  INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
	rule      TEXT    NOT NULL,
	target    TEXT    NOT NULL,
	error     TEXT    NOT NULL,
	failed_at INTEGER NOT NULL,
	PRIMARY KEY (event_id, rule)
) WITHOUT ROWID;

CREATE TRIGGER rule_failures_of_failed_event BEFORE INSERT ON rule_failures
WHEN (SELECT state FROM events WHERE id = NEW.event_id) IS NOT 'mapping_failed'
BEGIN
	SELECT RAISE(ABORT, 'rule failure of an event that is not mapping_failed');
END;

CREATE TRIGGER events_processed_without_failures BEFORE UPDATE OF state ON events
WHEN NEW.state = 'processed' AND EXISTS (SELECT 1 FROM rule_failures WHERE event_id = NEW.id)
BEGIN
	SELECT RAISE(ABORT, 'event still has failed rules');
END;
