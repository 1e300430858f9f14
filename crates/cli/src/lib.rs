//! The command line of SPEC §11. [`args`] is what scripts rely on (names may grow, not
//! change); [`run`] reads a command's standard input and files into checked values, hands
//! them to `rollcall_operator`, and prints what comes back. The binary parses, wires the
//! database in through [`Databases`], and turns a [`Failure`] into the exit code.

pub mod args;
mod commands;

use std::future::Future;
use std::process::ExitCode;

use clap::Parser;
use rollcall_sync::Engine;

pub use commands::run;

use crate::args::{Cli, DbArgs};

/// How a command ends when it does not succeed.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or configuration: exit 2.
    Usage(String),
    /// The run failed: exit 1 (the summary has been printed).
    RunFailed,
    /// Anything else: exit 1.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Internal(e)
    }
}

pub type CmdResult = Result<(), Failure>;

pub fn usage(message: impl Into<String>) -> Failure {
    Failure::Usage(message.into())
}

/// The databases commands open: the binary resolves a command's settings and builds the
/// engine every run goes through (the one `serve` uses).
pub trait Databases: Sync {
    fn engine(&self, db: &DbArgs) -> impl Future<Output = Result<Engine, Failure>> + Send;
}

/// The command line, or the exit code when there is nothing to run: clap's usage errors as
/// one line (SPEC §11), `--help` and `--version` printed.
pub fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            let text = e.render().to_string();
            let line = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("For more information")
                        && !l.starts_with("Usage:")
                })
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("rollcall: {}", line.trim_start_matches("error: "));
            Err(ExitCode::from(2))
        }
    }
}
