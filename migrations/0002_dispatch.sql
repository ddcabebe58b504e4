-- Onsite dispatch: spare parts and stock, technicians, assignments. Same portability
-- rules as 0001 (UUID text ids, BIGINT Unix milliseconds, BIGINT flags, JSON as TEXT).

-- The service region a site belongs to (matches technicians' and warehouses' regions).
ALTER TABLE sites ADD COLUMN region TEXT;

-- Spare-parts catalogue, synchronised from models/knowledge/parts.json at start-up.
CREATE TABLE parts (
    sku TEXT PRIMARY KEY,
    name_en TEXT NOT NULL,
    name_zh TEXT NOT NULL,
    product_lines TEXT NOT NULL,
    models TEXT NOT NULL,
    unit_price DOUBLE PRECISION NOT NULL,
    currency TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE warehouses (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    latitude DOUBLE PRECISION NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude DOUBLE PRECISION NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    created_at BIGINT NOT NULL
);

-- Stock per warehouse. `reserved` is held for escalated work orders; available is
-- on_hand - reserved. The CHECKs are the last line of defence: reservations are
-- conditional UPDATEs that never take more than is available.
CREATE TABLE stock (
    warehouse_id TEXT NOT NULL REFERENCES warehouses (id),
    sku TEXT NOT NULL REFERENCES parts (sku),
    on_hand BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    reorder_level BIGINT NOT NULL DEFAULT 0 CHECK (reorder_level >= 0),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (warehouse_id, sku)
);

CREATE TABLE part_reservations (
    id TEXT PRIMARY KEY,
    work_order_id TEXT NOT NULL REFERENCES work_orders (id),
    warehouse_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    status TEXT NOT NULL CHECK (status IN ('reserved', 'released', 'consumed')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    FOREIGN KEY (warehouse_id, sku) REFERENCES stock (warehouse_id, sku)
);
CREATE INDEX part_reservations_work_order ON part_reservations (work_order_id, status);

-- Raised when available stock falls below the reorder level; one open alert per item.
CREATE TABLE stock_alerts (
    id TEXT PRIMARY KEY,
    warehouse_id TEXT NOT NULL,
    sku TEXT NOT NULL,
    available BIGINT NOT NULL,
    reorder_level BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    FOREIGN KEY (warehouse_id, sku) REFERENCES stock (warehouse_id, sku)
);
CREATE UNIQUE INDEX stock_alerts_open ON stock_alerts (warehouse_id, sku) WHERE resolved_at IS NULL;

-- A technician profile for a user with the technician role. open_jobs counts the
-- assignments that are offered, accepted, en route or on site; assignment is a
-- conditional increment, so concurrent dispatchers cannot exceed max_jobs.
CREATE TABLE technicians (
    user_id TEXT PRIMARY KEY REFERENCES users (id),
    region TEXT NOT NULL,
    home_latitude DOUBLE PRECISION NOT NULL CHECK (home_latitude BETWEEN -90 AND 90),
    home_longitude DOUBLE PRECISION NOT NULL CHECK (home_longitude BETWEEN -180 AND 180),
    skills TEXT NOT NULL,
    hours TEXT NOT NULL,
    max_jobs BIGINT NOT NULL CHECK (max_jobs > 0),
    open_jobs BIGINT NOT NULL DEFAULT 0 CHECK (open_jobs >= 0 AND open_jobs <= max_jobs),
    active BIGINT NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL
);

CREATE TABLE assignments (
    id TEXT PRIMARY KEY,
    work_order_id TEXT NOT NULL REFERENCES work_orders (id),
    technician_id TEXT NOT NULL REFERENCES technicians (user_id),
    status TEXT NOT NULL CHECK (status IN ('offered', 'accepted', 'declined', 'en_route', 'on_site', 'done', 'withdrawn')),
    score DOUBLE PRECISION,
    breakdown TEXT,
    auto BIGINT NOT NULL DEFAULT 0,
    assigned_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- At most one live assignment per work order.
CREATE UNIQUE INDEX assignments_one_open ON assignments (work_order_id)
    WHERE status IN ('offered', 'accepted', 'en_route', 'on_site');
CREATE INDEX assignments_technician ON assignments (technician_id, status);
CREATE INDEX work_orders_first_response_due ON work_orders (first_response_due, id);

-- SLA timer levels that have fired (warning, breached) per work order and clock
-- (first_response, resolution): each fires once, in the transaction of its event.
CREATE TABLE sla_marks (
    work_order_id TEXT NOT NULL REFERENCES work_orders (id),
    clock TEXT NOT NULL CHECK (clock IN ('first_response', 'resolution')),
    level TEXT NOT NULL CHECK (level IN ('warning', 'breached')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (work_order_id, clock, level)
);
