//! A Kubernetes node's path to `runsc`, without a kubelet: containerd's CRI plugin with a
//! runtime handler `runsc` (the runc v2 shim, our binary as its `BinaryName`), driven over
//! its gRPC socket with the calls a kubelet makes. The pause and busybox images are built
//! here with `umoci` and imported with `ctr images import` (no registry is reachable).
//! `scripts/test` installs containerd, umoci and busybox-static when absent.

use std::path::Path;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, ExecSyncResponse, ImageSpec, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    ListImagesRequest, ListPodSandboxRequest, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopPodSandboxRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};

use integration::{Containerd, Image, Link, Platform, fixture, have_tool};

const PAUSE: &str = "localhost/rsentry-pause:test";
const BUSYBOX: &str = "localhost/rsentry-busybox:test";

fn available() -> bool {
    if let Some((what, reason)) = integration::missing(Platform::Systrap) {
        test_require::skip(what, reason);
        return false;
    }
    [
        "/usr/bin/containerd",
        "/usr/bin/ctr",
        "/usr/bin/containerd-shim-runc-v2",
        "/usr/bin/umoci",
        "/bin/busybox",
    ]
    .iter()
    .all(|t| have_tool(t))
}

/// Builds the pause and busybox images and imports them into containerd's `k8s.io`
/// namespace, where the CRI plugin looks.
fn import_images(ctd: &Containerd, work: &Path) {
    let pause = fixture("pause", Link::Static);
    let busybox = Path::new("/bin/busybox");
    let pause = Image {
        tag: "test",
        files: &[(&pause, "/pause")],
        links: &[],
        entrypoint: &["/pause"],
        cmd: &[],
    }
    .build(&work.join("pause"));
    let applets = ["sh", "cat", "echo", "sleep", "ls", "true", "id", "test"];
    let links: Vec<(String, &str)> = applets
        .iter()
        .map(|a| (format!("/bin/{a}"), "busybox"))
        .collect();
    let links: Vec<(&str, &str)> = links.iter().map(|(a, t)| (a.as_str(), *t)).collect();
    let busybox = Image {
        tag: "test",
        files: &[(busybox, "/bin/busybox")],
        links: &links,
        entrypoint: &[],
        cmd: &["/bin/sh"],
    }
    .build(&work.join("busybox"));
    for (tar, base) in [
        (&pause, "localhost/rsentry-pause"),
        (&busybox, "localhost/rsentry-busybox"),
    ] {
        let r = ctd.ctr(&[
            "-n",
            "k8s.io",
            "images",
            "import",
            "--snapshotter",
            "native",
            "--base-name",
            base,
            tar.to_str().expect("utf-8 path"),
        ]);
        assert_eq!(r.code, 0, "import {base}: {r:#?}");
    }
}

/// A gRPC channel over containerd's Unix socket.
async fn connect(sock: &Path) -> Channel {
    let sock = sock.to_path_buf();
    Endpoint::try_from("http://[::]:0")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(sock).await?))
            }
        }))
        .await
        .expect("connect to containerd's CRI")
}

/// The namespaces of the pod and of each of its containers: the node's network (no CNI
/// here), the pod's IPC, and one PID namespace per container, as a kubelet asks by
/// default.
fn namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// The pod's configuration (see [`namespaces`]).
fn pod_config(name: &str, logs: &Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: integration::unique_name("uid"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: logs.to_str().expect("utf-8 path").into(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(name: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Pod {
    rt: RuntimeServiceClient<Channel>,
    id: String,
    config: PodSandboxConfig,
}

impl Pod {
    /// `CreateContainer` + `StartContainer`; returns the container's id.
    async fn start(&mut self, name: &str, command: &[&str]) -> String {
        let id = self
            .rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: self.id.clone(),
                config: Some(container_config(name, command)),
                sandbox_config: Some(self.config.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}"))
            .into_inner()
            .container_id;
        self.rt
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("StartContainer {name}: {e}"));
        id
    }

    async fn exec(&mut self, id: &str, cmd: &[&str]) -> ExecSyncResponse {
        self.rt
            .exec_sync(ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 60,
            })
            .await
            .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}"))
            .into_inner()
    }

    async fn state(&mut self, id: &str) -> (ContainerState, i32) {
        let s = self
            .rt
            .container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .unwrap_or_else(|e| panic!("ContainerStatus: {e}"))
            .into_inner()
            .status
            .expect("a status");
        (s.state(), s.exit_code)
    }

    /// Asks `ContainerStatus` until the container has exited (bounded), and returns its
    /// exit code.
    async fn exit_code(&mut self, id: &str) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (state, code) = self.state(id).await;
            if state == ContainerState::ContainerExited {
                return code;
            }
            assert!(Instant::now() < deadline, "{id} still {state:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn cri_pod_runs_two_containers_in_one_sandbox() {
    if !available() {
        return;
    }
    let work = tempfile::tempdir().expect("work dir");
    let logs = work.path().join("logs");
    std::fs::create_dir(&logs).expect("log dir");
    let ctd = Containerd::start_cri(PAUSE);
    import_images(&ctd, work.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let channel = connect(&ctd.sock()).await;
        let mut images = ImageServiceClient::new(channel.clone());
        let listed = images
            .list_images(ListImagesRequest { filter: None })
            .await
            .expect("ListImages")
            .into_inner()
            .images;
        let tags: Vec<&String> = listed.iter().flat_map(|i| &i.repo_tags).collect();
        assert!(tags.iter().any(|t| *t == BUSYBOX), "{tags:?}");

        let mut rt = RuntimeServiceClient::new(channel);
        let config = pod_config("pod-a", &logs);
        let id = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: "runsc".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", ctd.log()))
            .into_inner()
            .pod_sandbox_id;
        let mut pod = Pod {
            rt,
            id: id.clone(),
            config,
        };

        let a = pod.start("a", &["/bin/sleep", "600"]).await;
        let b = pod.start("b", &["/bin/sleep", "600"]).await;
        assert_eq!(pod.state(&a).await.0, ContainerState::ContainerRunning);

        // ExecSync: output, error output and exit code of a process run in the container.
        let r = pod
            .exec(&a, &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
            .await;
        assert_eq!(
            (text(&r.stdout), text(&r.stderr), r.exit_code),
            ("out\n".into(), "err\n".into(), 3)
        );

        // Each container has its own root: a file made in a is not in b.
        let r = pod
            .exec(&a, &["/bin/sh", "-c", "echo mine > /only-a && cat /only-a"])
            .await;
        assert_eq!(
            (text(&r.stdout), r.exit_code),
            ("mine\n".into(), 0),
            "{r:?}"
        );
        let r = pod.exec(&b, &["/bin/test", "-e", "/only-a"]).await;
        assert_eq!(r.exit_code, 1, "{r:?}");

        // Both run on the one kernel of the pod's sandbox: they see the same boot.
        let boot = ["/bin/cat", "/proc/sys/kernel/random/boot_id"];
        let (ra, rb) = (pod.exec(&a, &boot).await, pod.exec(&b, &boot).await);
        assert_eq!((ra.exit_code, text(&ra.stdout).len()), (0, 37), "{ra:?}");
        assert_eq!(text(&ra.stdout), text(&rb.stdout), "not one sandbox");

        // A container that ends: its exit code and its output (in the CRI log format).
        let c = pod
            .start("c", &["/bin/sh", "-c", "echo from-c; exit 7"])
            .await;
        assert_eq!(pod.exit_code(&c).await, 7);
        let log = std::fs::read_to_string(logs.join("c.log")).expect("c's log");
        assert!(log.contains(" stdout F from-c"), "{log}");
        // It ending leaves the others running.
        assert_eq!(pod.state(&a).await.0, ContainerState::ContainerRunning);

        pod.rt
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .expect("StopPodSandbox");
        assert_eq!(pod.state(&a).await.0, ContainerState::ContainerExited);
        assert_eq!(pod.state(&b).await.0, ContainerState::ContainerExited);
        pod.rt
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .expect("RemovePodSandbox");
        let left = pod
            .rt
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await
            .expect("ListPodSandbox")
            .into_inner()
            .items;
        assert!(left.is_empty(), "{left:?}");
    });
}
