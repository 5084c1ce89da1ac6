//! `runsc`: the command-line interface and OCI runtime of the rsentry sandbox.

fn main() {
    eprintln!("runsc: not yet implemented");
    std::process::exit(1);
}
