//! Integration tests: one binary, each test spawns the server on port 0 with a fresh
//! database (SQLite, and PostgreSQL when `FIXLINE_TEST_POSTGRES_URL` is set, which
//! `scripts/test.sh` always does).

mod helpers;
mod vp8;

mod auth;
mod bad_input;
mod browser;
mod diagnosis;
mod dispatch;
mod evidence;
mod live;
mod ops;
mod process;
mod role_matrix;
mod storage;
mod surveys;
mod tls;
mod work_orders;
