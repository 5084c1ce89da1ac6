//! The sandbox's processes seen from the host: how `runsc` names their logs, which user
//! they run as, and what arguments reach the application.

use std::collections::BTreeMap;
use std::process::Command;

use integration::{Platform, on_every_platform, path_str, run_command, runsc};

/// Two sandboxes run at the same time with one `--debug-log` directory: each gets its own
/// three logs (`runsc.ID.do.log`, `.gofer.log`, `.boot.log`), and each Sentry log speaks of
/// its own program only.
fn debug_logs_of_concurrent_sandboxes_do_not_mix(p: Platform) {
    let dir = integration::scratch_dir();
    let logs = dir.path().join("logs");
    let markers = ["first-sandbox-marker", "second-sandbox-marker"];
    let runs: Vec<_> = markers
        .iter()
        .map(|m| {
            let mut cmd = Command::new(runsc());
            cmd.arg(format!("--platform={}", p.name()))
                .args(["--debug-log", path_str(&logs)])
                .args(["do", "--", "/bin/echo", m]);
            std::thread::spawn(move || run_command(cmd, b""))
        })
        .collect();
    for r in runs {
        r.join().expect("runner thread").assert_success("runsc do");
    }
    let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in std::fs::read_dir(&logs).expect("read log dir") {
        let name = e.expect("entry").file_name().into_string().expect("utf-8");
        let parts: Vec<&str> = name.split('.').collect();
        assert!(
            parts.len() == 4 && parts[0] == "runsc" && parts[3] == "log",
            "{name}"
        );
        by_id
            .entry(parts[1].to_string())
            .or_default()
            .push(parts[2].to_string());
    }
    assert_eq!(by_id.len(), 2, "two sandboxes, two ids: {by_id:?}");
    let mut seen = Vec::new();
    for (id, mut kinds) in by_id {
        kinds.sort();
        assert_eq!(kinds, ["boot", "do", "gofer"], "sandbox {id}");
        let boot = std::fs::read_to_string(logs.join(format!("runsc.{id}.boot.log")))
            .expect("read boot log");
        let mine: Vec<&str> = markers
            .iter()
            .copied()
            .filter(|m| boot.contains(m))
            .collect();
        assert_eq!(mine.len(), 1, "sandbox {id} logs one program: {boot}");
        seen.push(mine[0]);
    }
    seen.sort();
    assert_eq!(seen, markers);
}

on_every_platform!(debug_logs_of_concurrent_sandboxes_do_not_mix);
