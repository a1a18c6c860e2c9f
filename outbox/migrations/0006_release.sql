-- A dispatcher claims a few deliveries ahead of its free send slots and
-- gives back those it did not send (at shutdown, when the target's breaker
-- opens, or when they waited too long to start): such a delivery goes back
-- to where it was, pending when it had never been attempted, with its
-- attempt count as it was. Running may now move back to pending.
DROP TRIGGER deliveries_transition;

CREATE TRIGGER deliveries_transition BEFORE UPDATE OF state ON deliveries
WHEN NEW.state != OLD.state AND NOT (
	(OLD.state = 'pending'  AND NEW.state = 'running') OR
	(OLD.state = 'running'  AND NEW.state IN ('pending', 'delivered', 'retrying', 'dead')) OR
	(OLD.state = 'retrying' AND NEW.state = 'running') OR
	(OLD.state = 'dead'     AND NEW.state = 'retrying')
)
BEGIN
	SELECT RAISE(ABORT, 'invalid delivery state transition');
END;
