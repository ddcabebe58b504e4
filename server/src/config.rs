//! The one typed configuration tree.
//!
//! Precedence, lowest first: built-in defaults < TOML file (`--config` / `FIXLINE_CONFIG`)
//! < `FIXLINE_*` environment variables < command-line options. Nested keys map to
//! environment variables with a double underscore: `auth.access_token_ttl_secs` is
//! `FIXLINE_AUTH__ACCESS_TOKEN_TTL_SECS`. Every section rejects unknown keys, and every
//! error names the offending key, so a typo fails at start-up instead of being ignored.
//! `config/fixline.sample.toml` documents every key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::work_orders::sla::SlaPolicy;

/// Errors while loading the configuration. Each message names the key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Key { key: String, message: String },
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Directory for the SQLite database, evidence files and the token key.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means `sqlite://<data_dir>/fixline.db`.
    pub database_url: String,
    /// Base URL users reach the server at; used to build invite links.
    pub public_url: String,
    /// Seed the demo data set (customers, assets, staff) into an empty database.
    pub demo_data: bool,
    /// The fault taxonomy and product lines with fault codes (faults.json,
    /// product_lines.json), synchronised into the database at start-up.
    pub knowledge_dir: PathBuf,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub sla: SlaPolicy,
    pub diagnosis: DiagnosisConfig,
    pub media: MediaConfig,
    pub sessions: SessionsConfig,
    pub guidance: GuidanceConfig,
    pub tls: TlsConfig,
    pub dispatch: crate::dispatch::flow::DispatchConfig,
    pub sla_timers: crate::work_orders::sla_timers::SlaTimerConfig,
    pub webhooks: crate::webhooks::WebhookConfig,
    pub surveys: crate::work_orders::surveys::SurveyConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            public_url: String::new(),
            demo_data: false,
            knowledge_dir: PathBuf::from("models/knowledge"),
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            sla: SlaPolicy::default(),
            diagnosis: DiagnosisConfig::default(),
            media: MediaConfig::default(),
            sessions: SessionsConfig::default(),
            guidance: GuidanceConfig::default(),
            tls: TlsConfig::default(),
            dispatch: Default::default(),
            sla_timers: Default::default(),
            webhooks: Default::default(),
            surveys: Default::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `fixline=debug,sqlx=warn`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, level: "info".into() }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of an access token. Short on purpose: revocation is also checked per
    /// request, but a short lifetime bounds what a leaked token can do.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token (rotated on every use).
    pub refresh_token_ttl_secs: u64,
    /// Lifetime of a customer invite link.
    pub invite_ttl_secs: u64,
    /// Login attempts allowed per client address and per user name per minute.
    pub login_attempts_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 14 * 24 * 3600,
            invite_ttl_secs: 24 * 3600,
            login_attempts_per_minute: 10,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest JSON request body.
    pub max_json_body_bytes: usize,
    /// Largest evidence upload (photo, telemetry file, snapshot).
    pub max_evidence_bytes: usize,
    /// Largest page a list endpoint returns.
    pub max_page_size: u32,
    /// Longest a request may run before it is answered 503.
    pub request_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_json_body_bytes: 256 * 1024,
            max_evidence_bytes: 20 * 1024 * 1024,
            max_page_size: 200,
            request_timeout_secs: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnosisConfig {
    /// Load the models and diagnose photos and telemetry. When false the server runs
    /// without ONNX Runtime and evidence is stored undiagnosed.
    pub enabled: bool,
    /// Every sub-directory with a manifest.json is loaded as a model.
    pub models_dir: PathBuf,
    /// More model directories (each holding a manifest.json), e.g. a user's own model.
    pub extra_model_dirs: Vec<PathBuf>,
    /// The ONNX Runtime shared library; empty means `ORT_DYLIB_PATH`, else
    /// `.deps/onnxruntime/lib/libonnxruntime.so` (where scripts/setup.sh puts it).
    pub onnxruntime_library: PathBuf,
    /// Inference worker threads (each with its own session) per model.
    pub sessions_per_model: usize,
    /// ONNX Runtime intra-op threads per session.
    pub intra_threads: usize,
    /// Jobs waiting per model before uploads get 503 and live frames drop the oldest.
    pub queue_capacity: usize,
    /// Largest photo accepted for diagnosis, in pixels (width x height).
    pub max_image_pixels: u64,
    /// Live sessions: how often a frame of the customer's video is diagnosed.
    pub live_sample_interval_ms: u64,
    /// A telemetry alert needs this many consecutive uploads of one asset...
    pub alert_window: usize,
    /// ...whose mean probability of one fault (not `normal`) is at least this.
    pub alert_threshold: f32,
}

impl Default for DiagnosisConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            models_dir: PathBuf::from("models"),
            extra_model_dirs: Vec::new(),
            onnxruntime_library: PathBuf::new(),
            sessions_per_model: 2,
            intra_threads: 1,
            queue_capacity: 32,
            max_image_pixels: 40_000_000,
            live_sample_interval_ms: 1000,
            alert_window: 3,
            alert_threshold: 0.8,
        }
    }
}

impl DiagnosisConfig {
    pub fn effective_library(&self) -> PathBuf {
        if !self.onnxruntime_library.as_os_str().is_empty() {
            return self.onnxruntime_library.clone();
        }
        match std::env::var_os("ORT_DYLIB_PATH") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(".deps/onnxruntime/lib/libonnxruntime.so"),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// UDP addresses the WebRTC stack binds (host:port; port 0 picks one per peer
    /// connection). Use the address clients reach, never a wildcard: 127.0.0.1 for
    /// loopback-only tests, the LAN or public address otherwise.
    pub udp_addrs: Vec<String>,
    /// Interval between ICE connectivity checks; shorter connects faster.
    pub ice_check_interval_ms: u64,
    /// STUN servers handed to clients, e.g. `stun:stun.example.com:3478`. Empty in
    /// loopback tests (no traffic may leave the machine).
    pub stun_urls: Vec<String>,
    /// TURN servers handed to clients, e.g. `turn:turn.example.com:3478?transport=udp`.
    pub turn_urls: Vec<String>,
    /// The TURN server's shared secret (coturn `use-auth-secret` / `static-auth-secret`):
    /// each participant gets its own short-lived credentials derived from it.
    pub turn_secret: String,
    /// Lifetime of issued TURN credentials.
    pub turn_ttl_secs: u64,
    /// UDP ports peer connections bind, inclusive (open them in the firewall); both 0:
    /// any free port.
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    /// Behind a 1:1 NAT (a cloud VM's elastic or floating IP): the public IPv4 address
    /// announced in the server's host candidates instead of the bound private one in
    /// `udp_addrs`. Empty: announce what is bound.
    pub public_ip: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            udp_addrs: vec!["127.0.0.1:0".into()],
            ice_check_interval_ms: 20,
            stun_urls: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: String::new(),
            turn_ttl_secs: 6 * 3600,
            udp_port_min: 0,
            udp_port_max: 0,
            public_ip: String::new(),
        }
    }
}

/// HTTPS on `listen` (browsers allow the camera only in a secure context). Off by
/// default: on loopback, or behind a reverse proxy that terminates TLS, plain HTTP.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key_file`, serve HTTPS with it.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate generated once into
    /// `<data_dir>/tls/` (a LAN trial: browsers warn until the user accepts it).
    pub self_signed: bool,
    /// Host names and IP addresses the self-signed certificate is for (besides
    /// `localhost`, 127.0.0.1 and the listen address).
    pub self_signed_names: Vec<String>,
}

impl Config {
    /// Where the TLS certificate comes from, if HTTPS is on.
    pub fn tls_source(&self) -> Option<crate::tls::CertSource> {
        match (&self.tls.cert_file, &self.tls.key_file, self.tls.self_signed) {
            (Some(cert), Some(key), _) => Some(crate::tls::CertSource::Files { cert: cert.clone(), key: key.clone() }),
            (_, _, true) => {
                let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
                if !self.listen.ip().is_unspecified() {
                    names.push(self.listen.ip().to_string());
                }
                names.extend(self.tls.self_signed_names.iter().cloned());
                names.dedup();
                Some(crate::tls::CertSource::SelfSigned { dir: self.data_dir.join("tls"), names })
            }
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// A live session with nobody connected ends (outcome `abandoned`) after this long.
    pub grace_secs: u64,
    /// Most connected participants in one session.
    pub max_participants: usize,
    /// Typical length of a remote session, for the customer's wait estimate.
    pub avg_session_minutes: u64,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self { grace_secs: 30, max_participants: 6, avg_session_minutes: 10 }
    }
}

/// Guidance in live sessions (docs/guidance.md, docs/anchoring.md).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuidanceConfig {
    /// Annotation anchoring: frames of the customer's video tracked per second while a
    /// session has anchored annotations (every frame is decoded then); 0 turns
    /// anchoring off (keyframes only, for diagnosis).
    pub anchor_fps: u32,
    /// Most anchored annotations per session; later ones stay where they were drawn.
    pub max_anchors: usize,
}

impl Default for GuidanceConfig {
    fn default() -> Self {
        Self { anchor_fps: 10, max_anchors: 20 }
    }
}

/// Command-line and environment overrides for the four top-level options.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub demo_data: Option<bool>,
}

impl Config {
    /// Loads defaults < file < environment (`env` is passed in for testability) < overrides.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                text.parse::<toml::Table>().map_err(|e| ConfigError::Syntax {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        // The four options that clap also reads from the environment are applied as
        // overrides below; everything else is mapped here.
        const CLI_VARS: [&str; 4] =
            ["FIXLINE_CONFIG", "FIXLINE_LISTEN", "FIXLINE_DATA_DIR", "FIXLINE_DATABASE_URL"];
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("FIXLINE_") && !CLI_VARS.contains(&k.as_str()))
            .filter(|(k, _)| !k.starts_with("FIXLINE_TEST_") && k != "FIXLINE_REQUIRE_POSTGRES")
            .collect();
        for (name, value) in env {
            let path: Vec<String> = name["FIXLINE_".len()..]
                .split("__")
                .map(|s| s.to_ascii_lowercase())
                .collect();
            set_path(&mut table, &path, parse_env_value(&value)).map_err(|message| {
                ConfigError::Key { key: format!("{} (from {name})", path.join(".")), message }
            })?;
        }
        let mut config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                ConfigError::Key { key, message: e.into_inner().to_string() }
            })?;
        if let Some(listen) = &overrides.listen {
            config.listen = listen.parse().map_err(|e| ConfigError::Key {
                key: "listen".into(),
                message: format!("`{listen}` is not a socket address: {e}"),
            })?;
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &overrides.database_url {
            config.database_url = url.clone();
        }
        if let Some(demo) = overrides.demo_data {
            config.demo_data = demo;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let key = |k: &str, m: &str| Err(ConfigError::Key { key: k.into(), message: m.into() });
        if !self.database_url.is_empty()
            && !self.database_url.starts_with("sqlite:")
            && !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
        {
            return key("database_url", "must start with sqlite:, postgres:// or postgresql://");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return key("log.level", "is not a valid tracing filter (e.g. `info` or `fixline=debug,sqlx=warn`)");
        }
        if self.auth.access_token_ttl_secs == 0 || self.auth.access_token_ttl_secs > 24 * 3600 {
            return key("auth.access_token_ttl_secs", "must be between 1 and 86400");
        }
        if self.auth.refresh_token_ttl_secs < self.auth.access_token_ttl_secs {
            return key("auth.refresh_token_ttl_secs", "must not be shorter than the access token");
        }
        if self.auth.invite_ttl_secs == 0 {
            return key("auth.invite_ttl_secs", "must be positive");
        }
        if self.auth.login_attempts_per_minute == 0 {
            return key("auth.login_attempts_per_minute", "must be positive");
        }
        if self.limits.max_json_body_bytes < 1024 {
            return key("limits.max_json_body_bytes", "must be at least 1024");
        }
        if self.limits.max_evidence_bytes < 1024 {
            return key("limits.max_evidence_bytes", "must be at least 1024");
        }
        if self.limits.max_page_size == 0 || self.limits.max_page_size > 10_000 {
            return key("limits.max_page_size", "must be between 1 and 10000");
        }
        if self.limits.request_timeout_secs == 0 {
            return key("limits.request_timeout_secs", "must be positive");
        }
        if self.diagnosis.sessions_per_model == 0 || self.diagnosis.sessions_per_model > 64 {
            return key("diagnosis.sessions_per_model", "must be between 1 and 64");
        }
        if self.diagnosis.intra_threads == 0 || self.diagnosis.intra_threads > 64 {
            return key("diagnosis.intra_threads", "must be between 1 and 64");
        }
        if self.diagnosis.queue_capacity == 0 || self.diagnosis.queue_capacity > 100_000 {
            return key("diagnosis.queue_capacity", "must be between 1 and 100000");
        }
        if self.diagnosis.live_sample_interval_ms < 100 {
            return key("diagnosis.live_sample_interval_ms", "must be at least 100");
        }
        if self.diagnosis.alert_window == 0 || self.diagnosis.alert_window > 100 {
            return key("diagnosis.alert_window", "must be between 1 and 100");
        }
        if !(0.0..=1.0).contains(&self.diagnosis.alert_threshold) {
            return key("diagnosis.alert_threshold", "must be within 0..=1");
        }
        if self.diagnosis.max_image_pixels < 256 {
            return key("diagnosis.max_image_pixels", "must be at least 256");
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return key("tls", "cert_file and key_file go together");
        }
        if self.tls.self_signed && self.tls.cert_file.is_some() {
            return key("tls.self_signed", "use either a certificate (cert_file, key_file) or self_signed, not both");
        }
        if self.media.udp_addrs.is_empty() {
            return key("media.udp_addrs", "needs at least one address");
        }
        for a in &self.media.udp_addrs {
            match a.parse::<SocketAddr>() {
                Ok(s) if s.ip().is_unspecified() => {
                    return key("media.udp_addrs", "must name a concrete address, not 0.0.0.0 (loopback would be skipped)")
                }
                Ok(_) => {}
                Err(_) => return key("media.udp_addrs", &format!("`{a}` is not host:port")),
            }
        }
        if !self.media.public_ip.is_empty() && !self.media.public_ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_ipv4() && !ip.is_unspecified()) {
            return key("media.public_ip", "must be an IPv4 address such as 203.0.113.7 (or empty)");
        }
        if self.media.ice_check_interval_ms == 0 || self.media.ice_check_interval_ms > 5_000 {
            return key("media.ice_check_interval_ms", "must be between 1 and 5000");
        }
        if !self.media.turn_urls.is_empty() && self.media.turn_secret.len() < 16 {
            return key("media.turn_secret", "must be set (at least 16 characters) when media.turn_urls is");
        }
        if (self.media.udp_port_min == 0) != (self.media.udp_port_max == 0) || self.media.udp_port_min > self.media.udp_port_max {
            return key("media.udp_port_min", "udp_port_min and udp_port_max are both 0 or a range min <= max");
        }
        if self.media.turn_ttl_secs < 60 {
            return key("media.turn_ttl_secs", "must be at least 60");
        }
        for u in self.media.stun_urls.iter().chain(&self.media.turn_urls) {
            if !(u.starts_with("stun:") || u.starts_with("turn:") || u.starts_with("turns:")) {
                return key("media", &format!("`{u}` is not a stun:, turn: or turns: URL"));
            }
        }
        if self.sessions.max_participants < 2 || self.sessions.max_participants > 50 {
            return key("sessions.max_participants", "must be between 2 and 50");
        }
        if self.guidance.anchor_fps > 30 {
            return key("guidance.anchor_fps", "must be between 0 and 30");
        }
        if self.guidance.max_anchors == 0 || self.guidance.max_anchors > crate::guidance::live::MAX_SHAPES {
            return key("guidance.max_anchors", "must be between 1 and 100");
        }
        if self.sessions.grace_secs == 0 {
            return key("sessions.grace_secs", "must be positive");
        }
        if !self.public_url.is_empty()
            && !self.public_url.starts_with("http://")
            && !self.public_url.starts_with("https://")
        {
            return key("public_url", "must start with http:// or https://");
        }
        if !(1..=365).contains(&self.surveys.link_ttl_days) {
            return key("surveys.link_ttl_days", "must be 1-365");
        }
        if self.surveys.follow_up_hours > 24 * 90 {
            return key("surveys.follow_up_hours", "must be at most 2160 (90 days)");
        }
        if !(1..=99).contains(&self.sla_timers.warn_at_percent) {
            return key("sla_timers.warn_at_percent", "must be 1-99");
        }
        self.webhooks.validate().map_err(|(k, m)| ConfigError::Key { key: format!("webhooks.{k}"), message: m })?;
        self.dispatch.validate().map_err(|(k, m)| ConfigError::Key { key: format!("dispatch.{k}"), message: m })?;
        self.sla.validate().map_err(|(k, m)| ConfigError::Key { key: format!("sla.{k}"), message: m })
    }

    /// The database URL in effect: the configured one or the SQLite file in the data dir.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("fixline.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The base URL for links handed to users.
    pub fn effective_public_url(&self) -> String {
        if self.public_url.is_empty() {
            let scheme = if self.tls_source().is_some() { "https" } else { "http" };
            format!("{scheme}://{}", self.listen)
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }
}

/// Environment values are TOML scalars when they parse as one (`30`, `true`), else strings.
fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = table;
    for p in parents {
        let entry = cur.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| format!("`{p}` is not a section"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, env(&[]), &Overrides::default()).expect("defaults load");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.effective_database_url().starts_with("sqlite://"));
    }

    #[test]
    fn unknown_env_key_is_rejected_with_its_name() {
        let err = Config::load(None, env(&[("FIXLINE_AUTH__NO_SUCH", "1")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_such"), "{err}");
    }

    #[test]
    fn nested_env_overrides_file_and_cli_overrides_env() {
        let dir = std::env::temp_dir().join(format!("fixline-cfg-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n[auth]\naccess_token_ttl_secs = 60\n")
            .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[("FIXLINE_AUTH__ACCESS_TOKEN_TTL_SECS", "120")]),
            &Overrides { listen: Some("127.0.0.1:9100".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!(c.auth.access_token_ttl_secs, 120);
        assert_eq!(c.listen.port(), 9100);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn invalid_value_names_the_key() {
        let err =
            Config::load(None, env(&[("FIXLINE_LIMITS__MAX_PAGE_SIZE", "\"many\"")]), &Overrides::default())
                .unwrap_err()
                .to_string();
        assert!(err.contains("limits.max_page_size"), "{err}");
        let err = Config::load(None, env(&[("FIXLINE_SLA__STANDARD__P1__FIRST_RESPONSE_MINUTES", "0")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("sla.standard.p1"), "{err}");
    }
}
