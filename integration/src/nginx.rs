//! An nginx site in a directory of its own, for the tests and the bench: Debian's
//! `nginx` (package `nginx-light`) run in the foreground with every path it writes below
//! that directory, so the same configuration serves natively, in a network namespace and
//! in any sandbox.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Debian's nginx binary.
pub const NGINX: &str = "/usr/sbin/nginx";

/// The site's files, as served: a small page and a larger file sent with `sendfile`.
#[derive(Debug)]
pub struct NginxSite {
    /// The configuration file (`nginx -c <conf> -g 'daemon off;'`).
    pub conf: PathBuf,
    /// The contents of `/index.html`.
    pub index: String,
    /// The contents of `/big.bin` (1 MiB plus a tail, so it is not a round size).
    pub big: Vec<u8>,
}

/// Writes an nginx site below `dir`: `workers` worker processes (each a child of the
/// master, all accepting on one inherited listening socket) listening on `port` on every
/// IPv4 address, logs and temporary files below `dir`, which is made readable by the
/// workers' user (`nobody`); its parents must already be.
pub fn nginx_site(dir: &Path, port: u16, workers: u32) -> std::io::Result<NginxSite> {
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    for d in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join("tmp").join(d))?;
    }
    let index = format!("<p>served by nginx from {}</p>\n", dir.display());
    std::fs::write(www.join("index.html"), &index)?;
    let big: Vec<u8> = (0..(1u32 << 20) + 4321)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(www.join("big.bin"), &big)?;
    let d = dir.display();
    let conf = dir.join("nginx.conf");
    let mut f = std::fs::File::create(&conf)?;
    write!(
        f,
        "worker_processes {workers};\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log notice;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 sendfile on;\n\
         \x20 tcp_nopush on;\n\
         \x20 keepalive_requests 100000;\n\
         \x20 client_body_temp_path {d}/tmp/body;\n\
         \x20 proxy_temp_path {d}/tmp/proxy;\n\
         \x20 fastcgi_temp_path {d}/tmp/fastcgi;\n\
         \x20 uwsgi_temp_path {d}/tmp/uwsgi;\n\
         \x20 scgi_temp_path {d}/tmp/scgi;\n\
         \x20 server {{\n\
         \x20   listen {port};\n\
         \x20   root {d}/www;\n\
         \x20 }}\n\
         }}\n"
    )?;
    // The workers drop to `nobody`: a temporary directory is private (0700) until now.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(NginxSite { conf, index, big })
}

/// The shell command that starts nginx on `site` in the foreground, after printing the
/// global IPv4 addresses (`ip -o -4 addr show scope global`: `... inet A.B.C.D/N ...`)
/// for the caller to read.
pub fn nginx_command(site: &NginxSite) -> String {
    format!(
        "ip -o -4 addr show scope global\nexec {NGINX} -c {} -g 'daemon off;'\n",
        site.conf.display()
    )
}
