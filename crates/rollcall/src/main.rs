//! The `rollcall` binary: `serve`, and the operator commands of SPEC §11.
//!
//! Exit codes: 0 done (a run that ended Needs Attention included), 1 the run failed (Data Load
//! Failed, Above Deactivation Threshold), 2 bad usage or bad configuration, with a one-line
//! reason on standard error.

mod app;
mod settings;

use std::io::IsTerminal;
use std::process::ExitCode;

use rollcall_store::Store;
use tracing_subscriber::EnvFilter;

use rollcall_cli::args::{Command, DbArgs, ServeArgs};
use rollcall_cli::{CmdResult, Databases, Failure, usage};

/// mimalloc for Rust's allocations: a million-row file allocates and frees tens of millions of
/// small strings across the reader and planner threads, which spent a fifth of their time in
/// glibc's malloc and free (bench/RESULTS.md). SQLite's C allocations stay on glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hand memory freed by a large phase back to the system now, before the next phase grows:
/// mimalloc keeps freed pages for reuse a while, so a run's peak would be both phases' sum.
pub(crate) fn return_freed_memory() {
    // SAFETY: mi_collect only frees memory the allocator holds and no longer hands out.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// mimalloc's purge delay (`mi_option_purge_delay` in its v3 `mimalloc.h`, which
/// libmimalloc-sys does not name).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// `serve` hands freed memory back at once rather than a second later: under SCIM load it
/// otherwise peaked at 252 MiB instead of 172 MiB (bench/RESULTS.md). Purging at once costs a
/// large file run a few per cent of its time, so only `serve`, which runs for months, pays it.
/// (Arenas committed on demand, the other half of this, is set at build time:
/// `.cargo/config.toml`.)
fn tune_allocator(serving: bool) {
    if serving {
        // SAFETY: mi_option_set only changes an allocator setting, read when it next applies.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
}
use crate::settings::{Layers, LogStyle, Settings};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Settings for commands other than `serve`: flags and environment only.
pub fn settings_for(db: &DbArgs) -> Result<Settings, Failure> {
    Settings::resolve(Layers {
        file: None,
        env: &env,
        db,
        http: None,
        sftp: None,
    })
    .map_err(|e| usage(format!("{e:#}")))
}

/// Open (and migrate) the database the settings name.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if settings.database_url.backend() == rollcall_store::Backend::Sqlite {
        private_dir(&settings.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the data directory {}: {e}",
                settings.data_dir.display()
            )
        })?;
    }
    Store::open(&settings.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database {}: {e}", settings.database_url))
}

/// Create a folder (and its parents) that only the service's own user can open: the data
/// folder holds the users' data and the SFTP host key.
pub fn private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Operator commands open the database their flags and environment name.
struct FromSettings;

impl Databases for FromSettings {
    async fn engine(&self, db: &DbArgs) -> Result<rollcall_sync::Engine, Failure> {
        let settings = settings_for(db)?;
        let store = open_store(&settings)
            .await
            .map_err(|e| usage(format!("{e:#}")))?;
        Ok(engine(store, &settings))
    }
}

/// The run engine every command and `serve` hand their runs to.
pub fn engine(store: Store, settings: &Settings) -> rollcall_sync::Engine {
    rollcall_sync::Engine::new(
        store,
        rollcall_sync::EngineSettings {
            limits: settings.limits,
            release_memory: return_freed_memory,
            ..rollcall_sync::EngineSettings::default()
        },
    )
}

fn init_logging(style: LogStyle) {
    let filter = EnvFilter::try_from_env("ROLLCALL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in a log file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match style {
        LogStyle::Json => builder.json().try_init(),
        LogStyle::Text => builder.try_init(),
    };
}

fn init_cli_logging() {
    // Operator commands print their own results; only warnings and errors are logged.
    let filter = EnvFilter::try_from_env("ROLLCALL_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// An operator command whose reader goes away (`rollcall runs list | head -1`) ends quietly,
/// as other command-line tools do, instead of panicking on the closed pipe. `serve` keeps
/// Rust's default (the signal ignored): a client closing its connection is not an end.
fn end_quietly_on_closed_pipe() {
    // SAFETY: restores the default action of one signal before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

async fn serve(args: ServeArgs) -> CmdResult {
    let settings = Settings::resolve(Layers {
        file: args.config.as_deref(),
        env: &env,
        db: &args.db,
        http: args.http.as_deref(),
        sftp: args.sftp.as_deref(),
    })
    .map_err(|e| usage(format!("{e:#}")))?;
    init_logging(settings.log_style);
    let app = app::Application::build(&settings)
        .await
        .map_err(|e| usage(format!("{e:#}")))?;
    tracing::info!(database = %settings.database_url, "database ready");
    // Scripts wait for this line.
    println!("http listening on {}", app.http_addr());
    println!("sftp listening on {}", app.sftp_addr());
    app.run(app::shutdown_signal()).await?;
    Ok(())
}

/// Limit glibc's allocator to two arenas. By default it gives each thread that allocates an
/// arena of its own (up to eight per core), and the threads that run blocking SQLite work for
/// the async workers come and go: under SCIM load each arena kept its own freed memory, and
/// `serve` peaked at 362 MiB at 100,000 users against 205 MiB with two (bench/RESULTS.md).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = match rollcall_cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let serving = matches!(cli.command, Command::Serve(_));
    tune_allocator(serving);
    if !serving {
        end_quietly_on_closed_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rollcall: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            other => {
                init_cli_logging();
                rollcall_cli::run(other, &FromSettings).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("rollcall: {}", message.replace('\n', " "));
            ExitCode::from(2)
        }
        Err(Failure::RunFailed) => ExitCode::from(1),
        Err(Failure::Internal(e)) => {
            eprintln!("rollcall: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(1)
        }
    }
}
