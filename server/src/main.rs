//! `hangar`: the server and its operator commands.

fn main() -> std::process::ExitCode {
    hangar_server::cli::main()
}
