//! The command line: `serve`, `doctor`, `demo` and `inspect`.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

/// Sample Microsoft Teams transfer bot.
#[derive(Debug, Parser)]
#[command(name = "transfer-bot", version, about)]
pub struct Cli {
    /// Log format (overrides `log_format` in the config).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run against Microsoft Graph with the configuration file and environment.
    Serve {
        /// The TOML configuration file (default `transfer-bot.toml`, optional).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check a configuration against the real services (Graph token and its
    /// roles, signing keys, clock, callback URL, Redis, prompts): one line per
    /// check, exit code 1 if any failed.
    Doctor {
        /// The TOML configuration file (default `transfer-bot.toml`, optional).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run scripted calls against the embedded Graph emulator and print a result table.
    #[cfg(feature = "demo")]
    Demo {
        /// Instead of the scripted calls, run this many randomised calls and report throughput and latency.
        #[arg(long)]
        calls: Option<usize>,
        /// Calls in flight at once with `--calls`.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seed for the randomised mix with `--calls`.
        #[arg(long)]
        seed: Option<u64>,
        /// Run the scripted calls on this many `serve` processes sharing `--redis`,
        /// behind a round-robin proxy, killing one of them in the middle.
        /// With `--calls`, the randomised load runs on the instances instead (1 or more).
        #[arg(long, requires = "redis")]
        instances: Option<usize>,
        /// The Redis the instances share (`redis://host:port/`), with `--instances`.
        #[arg(long, requires = "instances")]
        redis: Option<String>,
    },
    /// Show how a notification body (a file, or `-` for stdin) is read and which hook it fires.
    Inspect {
        /// The file holding the body as Graph POSTs it, or `-` for stdin.
        file: PathBuf,
    },
}

/// Parses the arguments and runs the command; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inspect { file } => Ok(inspect_command(&file)),
        Command::Doctor { config, json } => {
            let config = match Config::load(config.as_deref()) {
                Ok(config) => config,
                Err(errors) => {
                    let check = crate::doctor::Check {
                        name: "config",
                        status: crate::doctor::Status::Failed,
                        detail: errors.to_string(),
                        hint: Some("fix the keys named above (docs/configuration.md)".to_owned()),
                    };
                    print_checks(&[check], json)?;
                    return Ok(ExitCode::FAILURE);
                }
            };
            let checks = runtime()?.block_on(crate::doctor::run(&config));
            print_checks(&checks, json)?;
            Ok(if crate::doctor::any_failed(&checks) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Serve { config } => {
            let config = Config::load(config.as_deref())?;
            let logs = crate::logging::init_with_telemetry(
                cli.log_format.unwrap_or(config.log_format),
                "info",
                &config.telemetry,
                &config.store.instance_id,
            )?;
            if logs.exporting() {
                tracing::info!("exporting traces over OTLP/HTTP (one trace per call chain)");
            }
            let runtime = runtime()?;
            let served = runtime.block_on(crate::server::serve(config));
            // Tasks still holding spans end them as the runtime goes; then the
            // last export sends them (the exporter has a thread of its own).
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            logs.shutdown();
            served?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "demo")]
        Command::Demo {
            calls,
            concurrency,
            seed,
            instances,
            redis,
        } => {
            crate::logging::init_with_default(cli.log_format.unwrap_or_default(), "warn")?;
            let runtime = runtime()?;
            let code = match (calls, instances.zip(redis)) {
                (calls, Some((instances, redis_url))) => {
                    crate::config::RedisUrl::parse(&redis_url).map_err(|e| anyhow::anyhow!("--redis: {e}"))?;
                    let options = crate::demo::cluster::ClusterOptions {
                        instances,
                        redis_url,
                        progress: calls.is_none(),
                    };
                    match calls {
                        None => runtime
                            .block_on(crate::demo::cluster::run_cluster_demo(&options))?
                            .print_and_check(),
                        Some(n) => {
                            let load = crate::demo::LoadOptions {
                                calls: n,
                                concurrency: concurrency.max(1),
                                seed,
                            };
                            runtime
                                .block_on(crate::demo::cluster::run_cluster_load(&options, load))?
                                .print_and_check()
                        }
                    }
                }
                (None, None) => runtime.block_on(crate::demo::run_scripted_demo())?.print_and_check(),
                (Some(n), None) => runtime
                    .block_on(crate::demo::run_load(crate::demo::LoadOptions {
                        calls: n,
                        concurrency: concurrency.max(1),
                        seed,
                    }))?
                    .print_and_check(),
            };
            Ok(code)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// `inspect`: prints the report to stdout, or a precise error to stderr.
fn inspect_command(file: &std::path::Path) -> ExitCode {
    let name = file.display().to_string();
    let body = if name == "-" {
        let mut body = Vec::new();
        std::io::stdin().read_to_end(&mut body).map(|_| body)
    } else {
        std::fs::read(file)
    };
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            eprintln!("error: cannot read {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match crate::inspect::inspect(&body) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_checks(checks: &[crate::doctor::Check], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(checks)?);
    } else {
        print!("{}", crate::doctor::render_text(checks));
    }
    Ok(())
}
