fn main() -> std::process::ExitCode {
    kycdesk::cli::main()
}
