-- The knowledge base: every version of every repair procedure (immutable rows), the
-- current version per procedure with its search document, and the fault/product-line
-- index of current versions. The full-text index itself differs between SQLite (FTS5)
-- and PostgreSQL (GIN over a tsvector) and is created by guidance::store at start-up.
CREATE TABLE procedures (
    id TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    body TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('file', 'api')),
    created_by TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (id, version)
);

CREATE TABLE procedure_heads (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    terms TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE procedure_faults (
    procedure_id TEXT NOT NULL,
    fault_id TEXT NOT NULL,
    product_line TEXT NOT NULL,
    PRIMARY KEY (procedure_id, fault_id, product_line)
);
CREATE INDEX procedure_faults_fault ON procedure_faults (fault_id, product_line);
