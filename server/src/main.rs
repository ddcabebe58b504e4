//! The `fixline` command: parse options, load the config, init logging, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fixline::auth::{password, Role};
use fixline::config::{Config, LogFormat, Overrides};

#[derive(Parser)]
#[command(name = "fixline", version, about = "AR remote-assist and diagnosis server")]
struct Cli {
    /// TOML config file (see config/fixline.sample.toml).
    #[arg(long, env = "FIXLINE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Directory for the SQLite database, evidence files and the token key.
    #[arg(long, env = "FIXLINE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// sqlite://... or postgres://... (default: SQLite in the data directory).
    #[arg(long, env = "FIXLINE_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, env = "FIXLINE_LISTEN", global = true)]
    listen: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server until SIGINT or SIGTERM.
    Serve {
        /// Seed the demo data set into an empty database.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user; prints a generated password unless --password-stdin is given.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Required for role customer.
        #[arg(long)]
        customer_id: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (generated unless --password-stdin) and end the user's sessions.
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    password::check_policy(&pw).map_err(anyhow::Error::msg)?;
    Ok(pw)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let demo = matches!(cli.command, Command::Serve { demo: true }).then_some(true);
    let overrides = Overrides { listen: cli.listen, data_dir: cli.data_dir, database_url: cli.database_url, demo_data: demo };
    let config = Config::load(cli.config.as_deref(), std::env::vars(), &overrides)?;
    init_logging(&config);
    match cli.command {
        Command::Serve { .. } => {
            let running = fixline::app::start(config).await?;
            let scheme = if running.state.config.tls_source().is_some() { "https" } else { "http" };
            let url = format!("{scheme}://{}", running.addr);
            tracing::info!(%url, "fixline listening");
            println!("fixline is running at {url}");
            println!("  API document: {url}/api/v1/openapi.json   health: {url}/healthz");
            if let Some((user, pw)) = &running.bootstrap.admin {
                println!("  First start: created the admin account (shown once, change it after login):");
                println!("    user name: {user}\n    password:  {pw}");
            }
            if !running.bootstrap.demo_users.is_empty() {
                println!("  Demo accounts (shown once):");
                for (user, role, pw) in &running.bootstrap.demo_users {
                    println!("    {role:<11} {user:<18} {pw}");
                }
            }
            println!("  Expert console: {url}/console   (customers open invite links: {url}/join#token=...)");
            println!("  API login: POST {url}/api/v1/auth/login {{\"username\":..., \"password\":...}}");
            running.wait_for(fixline::app::shutdown_signal()).await?;
            tracing::info!("stopped");
        }
        Command::Migrate => {
            let db = fixline::store::Db::open(&config.effective_database_url()).await?;
            db.close().await;
            println!("migrations applied");
        }
        Command::Admin(cmd) => {
            std::fs::create_dir_all(&config.data_dir)?;
            let db = fixline::store::Db::open(&config.effective_database_url()).await?;
            match cmd {
                AdminCommand::CreateUser { username, role, display_name, customer_id, password_stdin } => {
                    let role: Role = role.parse().map_err(anyhow::Error::msg)?;
                    fixline::http::users::check_username(&username).map_err(|e| anyhow::anyhow!("{e}"))?;
                    let customer_id = customer_id.map(|c| c.parse()).transpose()?;
                    let (pw, show) = if password_stdin { (read_password_stdin()?, false) } else { (password::generate(20), true) };
                    let hash = password::hash(&pw).map_err(anyhow::Error::msg)?;
                    fixline::auth::repo::insert_user(
                        &db,
                        fixline::auth::repo::NewUser {
                            username: &username,
                            display_name: display_name.as_deref().unwrap_or(&username),
                            role,
                            customer_id,
                            locale: "en",
                            password_hash: hash,
                        },
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot create {username}: {e}"))?;
                    println!("created {role} {username}");
                    if show {
                        println!("password: {pw}");
                    }
                }
                AdminCommand::ResetPassword { username, password_stdin } => {
                    let user = fixline::auth::repo::user_by_name(&db, &username)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no user named {username}"))?;
                    let (pw, show) = if password_stdin { (read_password_stdin()?, false) } else { (password::generate(20), true) };
                    let hash = password::hash(&pw).map_err(anyhow::Error::msg)?;
                    fixline::auth::repo::set_password(&db, user.id, &hash).await?;
                    println!("password reset for {username}; their sessions have ended");
                    if show {
                        println!("password: {pw}");
                    }
                }
            }
            db.close().await;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
