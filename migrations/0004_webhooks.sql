-- Outgoing webhooks (Standard Webhooks): endpoints registered by admins and the log of
-- deliveries of work-order events to them. Same portability rules as 0001 (UUID text
-- ids, BIGINT Unix milliseconds, BIGINT 0/1 flags, JSON as TEXT).

-- `secret` is the endpoint's signing key in its `whsec_<base64>` form. It is a
-- credential: stored because every delivery is signed with it, shown once when the
-- endpoint is created, never returned by the API again and never logged. Deleting the
-- endpoint deletes it.
CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    secret TEXT NOT NULL,
    -- JSON list of event kinds (`status_changed`, ...); empty list = every kind.
    event_kinds TEXT NOT NULL DEFAULT '[]',
    active BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    -- Events that occurred before this instant are not delivered (creation, or the
    -- last reactivation): an endpoint never receives a replay of older history.
    active_since BIGINT NOT NULL,
    created_by TEXT REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per (endpoint, event): the UNIQUE constraint makes an event go to an endpoint
-- at most once however often the scanner sees it. Test pings have no work order
-- (work_order_id and seq NULL; NULLs never collide in a UNIQUE constraint).
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    work_order_id TEXT,
    seq BIGINT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    -- Pending: when the next attempt is due (or when the lease of the attempt in flight
    -- ends). Delivered or failed: the last attempt.
    next_attempt_at BIGINT NOT NULL,
    last_attempt_at BIGINT,
    last_status_code BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (endpoint_id, work_order_id, seq),
    FOREIGN KEY (work_order_id, seq) REFERENCES work_order_events (work_order_id, seq),
    CHECK ((work_order_id IS NULL) = (seq IS NULL))
);
-- The sender's queue: only pending rows, by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- The delivery log of one endpoint, newest first (ids are time-ordered UUIDv7).
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
-- Housekeeping: finished rows past the retention period.
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);

-- The scanner reads new events by time.
CREATE INDEX work_order_events_occurred ON work_order_events (occurred_at);
