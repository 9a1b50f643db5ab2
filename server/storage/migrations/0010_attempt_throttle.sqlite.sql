-- jitsuin schema, version 10: the wait of each source address after its wrong tries of an
-- applicant's credential (access code, PIN and EAB key), so that a stranger who knows an
-- enrollment ID cannot spend the max_attempts tries in one burst. A row is written only for a
-- wrong try that was compared, which the hard lock bounds to max_attempts per credential, and the
-- rows of a counter go when a new credential resets it: the table cannot grow without bound.
CREATE TABLE attempt_throttle (
    application_id TEXT    NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    counter        TEXT    NOT NULL CHECK (counter IN ('access_attempts', 'pin_attempts')),
    source         TEXT    NOT NULL,
    wrong          INTEGER NOT NULL,
    retry_at       TEXT    NOT NULL,
    PRIMARY KEY (application_id, counter, source)
);
