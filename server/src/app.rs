//! The composition root: open the store, load the token key, bootstrap the first admin
//! (and the demo data when asked), build the router and serve until told to stop, then
//! drain in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::rate_limit::LoginLimiter;
use crate::auth::repo::{self, NewUser};
use crate::auth::tokens::TokenKey;
use crate::auth::{password, Role};
use crate::config::Config;
use crate::diagnosis::alerts::AlertMonitor;
use crate::diagnosis::registry::{Registry, RegistrySettings};
use crate::http::{self, AppState};
use crate::store::Db;
use crate::work_orders::evidence::BlobStore;

/// Credentials created at start-up, shown once.
#[derive(Debug, Default)]
pub struct Bootstrap {
    /// (user name, password) of the admin created on first start.
    pub admin: Option<(String, String)>,
    /// (user name, role, password) of the demo accounts created on first start.
    pub demo_users: Vec<(String, Role, String)>,
}

/// Builds the shared state: data directory, database (migrated), key, blob store.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let url = config.effective_database_url();
    let db = Db::open(&url).await.with_context(|| format!("cannot open the database ({})", redact_url(&url)))?;
    let key = TokenKey::load_or_create(&config.data_dir.join("token.key")).context("cannot load the token key")?;
    let blobs = BlobStore::new(&config.data_dir).context("cannot create the evidence directory")?;
    let knowledge = crate::customers::knowledge::Knowledge::load(&config.knowledge_dir)?;
    knowledge.sync(&db).await.context("cannot store the knowledge base")?;
    let diagnosis = if config.diagnosis.enabled {
        let d = &config.diagnosis;
        let mut dirs = Registry::discover(&d.models_dir)?;
        dirs.extend(d.extra_model_dirs.iter().cloned());
        let settings = RegistrySettings {
            onnxruntime_library: d.effective_library(),
            model_dirs: dirs,
            sessions_per_model: d.sessions_per_model,
            intra_threads: d.intra_threads,
            queue_capacity: d.queue_capacity,
        };
        tokio::task::spawn_blocking(move || Registry::load(&settings)).await??
    } else {
        Registry::empty()
    };
    for m in &diagnosis.models {
        if let Some(l) = m.manifest.labels.iter().find(|l| !knowledge.has_fault(&l.fault_id)) {
            anyhow::bail!("{}: label `{}` maps to fault `{}`, which is not in {}", m.manifest.model_path.display(), l.name, l.fault_id, config.knowledge_dir.join("faults.json").display());
        }
    }
    // Repair procedures and the parts catalogue, checked against the taxonomy.
    let fault_ids = knowledge.faults.iter().map(|f| f.id.clone()).collect();
    let line_codes = knowledge.product_lines.iter().map(|l| l.code.clone()).collect();
    let library = crate::guidance::procedures::Library::load(&config.knowledge_dir, &fault_ids, &line_codes)?;
    let catalogue: Vec<crate::dispatch::parts::Part> = library
        .parts
        .iter()
        .map(|p| crate::dispatch::parts::Part {
            sku: p.sku.clone(),
            name_en: p.name_en.clone(),
            name_zh: p.name_zh.clone(),
            product_lines: p.product_lines.clone(),
            models: p.models.clone(),
            unit_price: p.unit_price,
            currency: p.currency.clone(),
        })
        .collect();
    crate::dispatch::parts::sync_catalogue(&db, &catalogue).await.context("cannot store the parts catalogue")?;
    crate::guidance::store::sync(&db, &library).await.context("cannot store the repair procedures")?;
    let guidance = crate::guidance::Guidance { library, fault_ids };
    // Labels named `normal` are the healthy class of a model: they never raise alerts.
    let normal_ids = diagnosis
        .models
        .iter()
        .flat_map(|m| m.manifest.labels.iter().filter(|l| l.name == "normal").map(|l| l.fault_id.clone()))
        .collect();
    let alerts = AlertMonitor::new(config.diagnosis.alert_window, config.diagnosis.alert_threshold, normal_ids);
    let media = crate::media::MediaSettings {
        udp_addrs: config.media.udp_addrs.clone(),
        ice_check_interval: std::time::Duration::from_millis(config.media.ice_check_interval_ms),
        stun_urls: config.media.stun_urls.clone(),
        turn_urls: config.media.turn_urls.clone(),
        turn_secret: config.media.turn_secret.clone(),
        turn_ttl_secs: config.media.turn_ttl_secs,
        port_range: (config.media.udp_port_min != 0).then_some((config.media.udp_port_min, config.media.udp_port_max)),
        public_ip: config.media.public_ip.parse().ok(),
    };
    let hub = crate::signal::hub::spawn(
        db.clone(),
        config.sla,
        std::time::Duration::from_secs(config.sessions.grace_secs),
        config.sessions.max_participants,
        config.sessions.avg_session_minutes * 60,
        crate::guidance::anchoring::AnchoringConfig::new(config.guidance.anchor_fps, config.guidance.max_anchors),
    );
    Ok(AppState {
        guidance: Arc::new(guidance),
        signal: Arc::new(crate::signal::SignalState::new(hub, media)),
        alerts: Arc::new(alerts),
        diagnosis: Arc::new(diagnosis),
        db,
        login_limiter: Arc::new(LoginLimiter::new(config.auth.login_attempts_per_minute)),
        config: Arc::new(config),
        key,
        blobs,
        metrics: Arc::default(),
    })
}

/// Hides the password of a database URL for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***@{}", &url[..s], &url[at + 1..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Creates the first admin when there are no users, and the demo data when configured.
pub async fn bootstrap(state: &AppState) -> anyhow::Result<Bootstrap> {
    let mut out = Bootstrap::default();
    // Compute the timing-equaliser hash now, off the reactor, not on the first bad login.
    tokio::task::spawn_blocking(|| {
        password::dummy_hash();
    })
    .await?;
    if repo::count_users(&state.db).await? == 0 {
        let pw = password::generate(20);
        let hash = password::hash(&pw).map_err(anyhow::Error::msg)?;
        repo::insert_user(
            &state.db,
            NewUser { username: "admin", display_name: "Administrator", role: Role::Admin, customer_id: None, locale: "en", password_hash: hash },
        )
        .await?;
        out.admin = Some(("admin".into(), pw));
    }
    if state.config.demo_data {
        out.demo_users = crate::demo::seed(state).await?;
    }
    Ok(out)
}

/// A server running in this process.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub bootstrap: Bootstrap,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    /// Background jobs (SLA timers, webhook deliveries): told to stop, awaited before the
    /// database closes.
    background_stop: tokio::sync::watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests, closes the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.context("server task panicked")??;
        let _ = self.background_stop.send(true);
        for t in self.background.drain(..) {
            let _ = t.await;
        }
        self.state.db.close().await;
        Ok(())
    }

    /// Waits until the server ends (after [`Running::stop`] from elsewhere or an error).
    pub async fn wait_for(mut self, signal: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        tokio::select! {
            r = &mut self.task => { r.context("server task panicked")??; Ok(()) }
            _ = signal => self.stop().await,
        }
    }
}

/// Binds, bootstraps and starts serving in a background task.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let mut config = config;
    config.listen = addr;
    let tls = config.tls_source().map(|s| crate::tls::acceptor(&s)).transpose().context("cannot set up TLS")?;
    let state = build_state(config).await?;
    let bootstrap = bootstrap(&state).await?;
    let router = http::router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = rx.await;
    };
    let task = match tls {
        Some(acceptor) => tokio::spawn(crate::tls::serve(listener, acceptor, router, shutdown, std::time::Duration::from_secs(30))),
        None => tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown).await
        }),
    };
    let (background_stop, stop_rx) = tokio::sync::watch::channel(false);
    let surveys = crate::work_orders::sla_timers::Surveys {
        key: state.key.clone(),
        cfg: state.config.surveys.clone(),
        public_url: state.config.effective_public_url(),
    };
    let webhooks = crate::webhooks::worker::run(state.db.clone(), state.config.webhooks.clone(), stop_rx.clone());
    let timers = crate::work_orders::sla_timers::run(state.db.clone(), state.config.sla, state.config.sla_timers.clone(), surveys, stop_rx);
    let background = vec![tokio::spawn(timers), tokio::spawn(webhooks)];
    Ok(Running { addr, state, bootstrap, shutdown: Some(tx), task, background_stop, background })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(super::redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
