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
mod dispatch_browser;
mod evidence;
mod guidance;
mod guidance_browser;
mod kpis;
mod live;
mod ops;
mod process;
mod role_matrix;
mod storage;
mod surveys;
mod tls;
mod webhooks;
mod work_orders;
