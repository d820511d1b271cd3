//! `graph-comms-emulator --listen 127.0.0.1:PORT`: runs the emulator until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use graph_comms_emulator::{Emulator, EmulatorConfig};

/// A local Microsoft Graph calling emulator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// `iss` of notification JWTs.
    #[arg(long, default_value = "https://api.botframework.com")]
    issuer: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let config = EmulatorConfig {
        listen: args.listen,
        issuer: args.issuer,
        ..EmulatorConfig::default()
    };
    let emulator = match Emulator::start(config).await {
        Ok(e) => e,
        Err(error) => {
            eprintln!("graph-comms-emulator: {error}");
            return ExitCode::FAILURE;
        }
    };
    let app = emulator.default_app();
    println!("graph base url:      {}", emulator.graph_base_url());
    println!("login base url:      {}", emulator.login_base_url());
    println!("openid configuration: {}", emulator.openid_configuration_url());
    println!("control api:         {}/_emulator/info", emulator.base_url());
    println!("tenant id:           {}", app.tenant_id);
    println!("app id:              {}", app.app_id);
    println!("client secret:       {}", app.client_secret);
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("graph-comms-emulator: cannot wait for Ctrl-C: {error}");
    }
    emulator.shutdown().await;
    ExitCode::SUCCESS
}
