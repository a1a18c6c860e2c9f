-- states holds a source's snapshot of an interaction still in progress,
-- for platforms that spread one interaction over several events (Genesys,
-- Five9). It is written in the same transaction as the event that changed
-- it, and deleted when the interaction is done.
CREATE TABLE states (
	platform   TEXT    NOT NULL,
	state_key  TEXT    NOT NULL,
	data       BLOB    NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (platform, state_key)
);
CREATE INDEX states_updated ON states (updated_at);
