//! The benchmark suite. `./bench/run.sh` builds this in release and runs `bench suite`,
//! which starts the other subcommands as separate (pinned) processes.

mod httpc;
mod memory;
mod openloop;
mod redis_memory;
mod server;
mod stages;
mod suite;
mod token;

use clap::{Parser, Subcommand};

/// Benchmarks for the graph-comms crates.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every benchmark and write the Markdown report.
    Suite(suite::SuiteArgs),
    /// Serve a notification endpoint (bare, full or uncached) for the load generators.
    Serve(server::ServeArgs),
    /// Open-loop load generator with latency from the intended send time.
    Openloop(openloop::OpenLoopArgs),
    /// Resident memory with N tracked calls.
    Memory(memory::MemoryArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Suite(args) => suite::run(args),
        Command::Serve(args) => server::serve(args),
        Command::Openloop(args) => openloop::run(args),
        Command::Memory(args) => memory::run(args),
    }
}
