-- Times are integer Unix milliseconds (UTC): sortable, comparable, and
-- independent of the driver's time formatting.

-- events holds every accepted platform event, raw, exactly as posted.
CREATE TABLE events (
	id          INTEGER PRIMARY KEY,
	platform    TEXT    NOT NULL,
	event_key   TEXT    NOT NULL,
	event_type  TEXT    NOT NULL,
	received_at INTEGER NOT NULL,
	body        BLOB    NOT NULL,
	-- processed: mapped (into zero or more deliveries);
	-- mapping_failed: kept with the error, to be re-mapped after a fix.
	state       TEXT    NOT NULL CHECK (state IN ('processed', 'mapping_failed')),
	error       TEXT,
	CHECK ((state = 'mapping_failed') = (error IS NOT NULL)),
	UNIQUE (platform, event_key)
);

-- deliveries is the outbox: one row per activity record per target.
CREATE TABLE deliveries (
	id              INTEGER PRIMARY KEY,
	event_id        INTEGER REFERENCES events (id) ON DELETE SET NULL,
	target          TEXT    NOT NULL,
	idem_key        TEXT    NOT NULL,
	payload         BLOB    NOT NULL,
	state           TEXT    NOT NULL DEFAULT 'pending'
	                CHECK (state IN ('pending', 'running', 'retrying', 'delivered', 'dead')),
	attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	created_at      INTEGER NOT NULL,
	next_attempt_at INTEGER NOT NULL,
	lease_until     INTEGER,
	finished_at     INTEGER,
	last_status     INTEGER,
	last_error      TEXT,
	-- A running row holds a lease; only finished rows have finished_at.
	CHECK ((state = 'running') = (lease_until IS NOT NULL)),
	CHECK ((state IN ('delivered', 'dead')) = (finished_at IS NOT NULL)),
	CHECK (state != 'dead' OR last_error IS NOT NULL),
	UNIQUE (target, idem_key)
);

CREATE INDEX deliveries_due ON deliveries (target, next_attempt_at, id)
	WHERE state IN ('pending', 'retrying');
CREATE INDEX deliveries_running ON deliveries (lease_until) WHERE state = 'running';
CREATE INDEX deliveries_finished ON deliveries (state, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX events_received ON events (received_at);

-- The only moves a delivery may make. Anything else is a bug, and SQLite
-- refuses it rather than letting a row skip or repeat a step.
CREATE TRIGGER deliveries_transition BEFORE UPDATE OF state ON deliveries
WHEN NEW.state != OLD.state AND NOT (
	(OLD.state = 'pending'  AND NEW.state = 'running') OR
	(OLD.state = 'running'  AND NEW.state IN ('delivered', 'retrying', 'dead')) OR
	(OLD.state = 'retrying' AND NEW.state = 'running') OR
	(OLD.state = 'dead'     AND NEW.state = 'retrying')
)
BEGIN
	SELECT RAISE(ABORT, 'invalid delivery state transition');
END;

-- attempts records every delivery attempt.
CREATE TABLE attempts (
	id            INTEGER PRIMARY KEY,
	delivery_id   INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
	attempt       INTEGER NOT NULL,
	started_at    INTEGER NOT NULL,
	latency_ms    INTEGER NOT NULL,
	status        INTEGER,
	outcome       TEXT    NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
	error_class   TEXT,
	error         TEXT,
	-- the start of the target's response body: the CRM's own explanation
	response_body TEXT
);
CREATE INDEX attempts_delivery ON attempts (delivery_id, attempt);

-- probe is written by the readiness check: a real write proves the
-- database is writable, not just open.
CREATE TABLE probe (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	at INTEGER NOT NULL
);
