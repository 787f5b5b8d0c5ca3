//! Skeleton of the `hostexec` command: its subcommands come with the CLI issue.

fn main() {
    eprintln!("hostexec: not implemented yet (see the CLI issue)");
    std::process::exit(1);
}
