-- Satisfaction surveys (one per resolution of a work order) and their follow-up tasks.
CREATE TABLE surveys (
    id TEXT PRIMARY KEY,
    work_order_id TEXT NOT NULL REFERENCES work_orders (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    answered_at BIGINT,
    rating BIGINT CHECK (rating BETWEEN 1 AND 5),
    comment TEXT,
    complaint BIGINT NOT NULL DEFAULT 0,
    follow_up_due BIGINT NOT NULL,
    follow_up_done_at BIGINT,
    follow_up_note TEXT
);
CREATE INDEX surveys_work_order ON surveys (work_order_id, created_at);
CREATE INDEX surveys_follow_up ON surveys (follow_up_done_at, follow_up_due);
