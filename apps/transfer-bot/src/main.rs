//! The `transfer-bot` command; everything lives in the library.

fn main() -> std::process::ExitCode {
    transfer_bot::cli::main()
}
