fn main() -> std::process::ExitCode {
    malipo::cli::main()
}
