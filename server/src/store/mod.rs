//! The database: one `sqlx::AnyPool` over SQLite (default, a file in the data directory)
//! or PostgreSQL (selected by a `postgres://` URL), and the embedded migrations.
//!
//! SQL in this crate is written once for both: `$n` placeholders (SQLite accepts them),
//! TEXT ids, BIGINT timestamps. SQLite runs in WAL mode with foreign keys on and a busy
//! timeout so concurrent writers queue instead of failing. This module owns connection
//! setup and migrations only; each domain module owns its queries.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// Which database a pool talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// The migrations, embedded so the binary is self-contained.
const MIGRATIONS: &[(i64, &str, &str)] =
    &[
        (1, "foundation", include_str!("../../../migrations/0001_foundation.sql")),
        (2, "dispatch", include_str!("../../../migrations/0002_dispatch.sql")),
        (3, "surveys", include_str!("../../../migrations/0003_surveys.sql")),
        (4, "webhooks", include_str!("../../../migrations/0004_webhooks.sql")),
        (5, "guidance", include_str!("../../../migrations/0005_guidance.sql")),
        (6, "expert_skills", include_str!("../../../migrations/0006_expert_skills.sql")),
    ];

pub fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(v, d, sql)| Migration::new(*v, Cow::Borrowed(*d), MigrationType::Simple, Cow::Borrowed(*sql), false))
        .collect::<Vec<_>>();
    Migrator { migrations: Cow::Owned(migrations), ignore_missing: false, locking: true, no_tx: false }
}

impl Db {
    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL: readers never block the writer; NORMAL sync is durable
                            // across process crashes (the log is fsynced at checkpoints)
                            // and is the documented pairing for WAL.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(32)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
        };
        Ok(Db { pool, backend })
    }

    /// Connects and applies pending migrations.
    pub async fn open(url: &str) -> Result<Db, StoreError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrator().run(&self.pool).await?;
        Ok(())
    }

    /// True when the database answers and every embedded migration has been applied.
    pub async fn ready(&self) -> Result<bool, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.pool)
            .await?;
        Ok(MIGRATIONS.iter().all(|(v, _, _)| rows.iter().any(|(r,)| r == v)))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// True when the error is a unique or primary-key violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// True when the error is a foreign-key violation.
pub fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}
