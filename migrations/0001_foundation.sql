-- fixline foundation schema. Portable between SQLite and PostgreSQL: ids are UUID text,
-- timestamps are BIGINT Unix milliseconds, flags are BIGINT 0/1, JSON is TEXT.
-- Never edit a migration that has been applied; add a new one.

CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    tier TEXT NOT NULL CHECK (tier IN ('strategic', 'key', 'standard')),
    contact_email TEXT,
    contact_phone TEXT,
    locale TEXT NOT NULL DEFAULT 'en',
    created_at BIGINT NOT NULL
);
CREATE INDEX customers_name ON customers (name);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('customer', 'expert', 'dispatcher', 'technician', 'admin')),
    password_hash TEXT NOT NULL,
    customer_id TEXT REFERENCES customers (id),
    locale TEXT NOT NULL DEFAULT 'en',
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    CHECK ((role = 'customer') = (customer_id IS NOT NULL))
);

CREATE TABLE sites (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    latitude DOUBLE PRECISION NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude DOUBLE PRECISION NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    timezone TEXT NOT NULL DEFAULT 'UTC',
    created_at BIGINT NOT NULL
);
CREATE INDEX sites_customer ON sites (customer_id);

CREATE TABLE product_lines (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name_en TEXT NOT NULL,
    name_zh TEXT NOT NULL,
    category TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE fault_codes (
    product_line_id TEXT NOT NULL REFERENCES product_lines (id),
    code TEXT NOT NULL,
    fault_id TEXT NOT NULL,
    description_en TEXT NOT NULL,
    description_zh TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    PRIMARY KEY (product_line_id, code)
);

CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    site_id TEXT REFERENCES sites (id),
    product_line_id TEXT NOT NULL REFERENCES product_lines (id),
    model TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    purchase_date TEXT,
    warranty_until TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (product_line_id, serial_number)
);
CREATE INDEX assets_customer ON assets (customer_id);

CREATE TABLE work_orders (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    asset_id TEXT REFERENCES assets (id),
    site_id TEXT REFERENCES sites (id),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    channel TEXT NOT NULL,
    priority TEXT NOT NULL,
    tier TEXT NOT NULL,
    status TEXT NOT NULL,
    fault_codes TEXT NOT NULL,
    first_response_due BIGINT NOT NULL,
    resolution_due BIGINT NOT NULL,
    first_response_at BIGINT,
    resolved_at BIGINT,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX work_orders_created ON work_orders (created_at, id);
CREATE INDEX work_orders_status ON work_orders (status, created_at);
CREATE INDEX work_orders_customer ON work_orders (customer_id, created_at);
CREATE INDEX work_orders_resolution_due ON work_orders (resolution_due, id);

-- Append-only: rows are inserted, never updated or deleted. (work_order_id, seq) makes
-- concurrent appends to one work order conflict instead of interleaving.
CREATE TABLE work_order_events (
    work_order_id TEXT NOT NULL REFERENCES work_orders (id),
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_role TEXT,
    occurred_at BIGINT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (work_order_id, seq)
);

CREATE TABLE evidence (
    id TEXT PRIMARY KEY,
    work_order_id TEXT NOT NULL REFERENCES work_orders (id),
    kind TEXT NOT NULL CHECK (kind IN ('photo', 'telemetry', 'snapshot')),
    content_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    filename TEXT,
    uploaded_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX evidence_work_order ON evidence (work_order_id, created_at);

CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    work_order_id TEXT NOT NULL REFERENCES work_orders (id),
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- A login: the refresh token (stored as a SHA-256 hash) and every access token issued
-- from it are bound to one row; logout or refresh rotation sets revoked_at.
CREATE TABLE auth_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users (id),
    invite_id TEXT REFERENCES invites (id),
    refresh_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    CHECK ((user_id IS NULL) <> (invite_id IS NULL))
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
