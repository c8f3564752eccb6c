//! A real Kubernetes API server for the operator's tests, as controller-runtime's envtest runs
//! one: Debian's etcd and the kube-apiserver `scripts/kube-build.sh` builds from Debian's
//! kubernetes source package (v1.20.2), on loopback, with a CA, RBAC and static tokens. No
//! kubelet: pods are created and their status patched through the API.
//!
//! Users (static tokens): `admin` in `system:masters`, and the operator as the chart's service
//! account `system:serviceaccount:census:census-server` (so the chart's own RoleBinding or
//! ClusterRoleBinding applies to it unchanged), with no rights until a test binds some.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::free_port;

pub const ADMIN_TOKEN: &str = "admin-token-census-tests";
pub const OPERATOR_TOKEN: &str = "operator-token-census-tests";
/// The namespace the chart is rendered into for these tests, and the operator's identity in it.
pub const NAMESPACE: &str = "census";
pub const OPERATOR_USER: &str = "system:serviceaccount:census:census-server";

/// The directory holding kube-apiserver and kube-controller-manager (built once, then cached;
/// asked of the script once per test process, so parallel tests never build twice).
pub fn kube_bin_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kube-build.sh");
    let out = Command::new("bash").arg(&script).stderr(Stdio::inherit()).output().expect("run kube-build.sh");
    assert!(
        out.status.success(),
        "scripts/kube-build.sh failed (it builds kube-apiserver from Debian's source)"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(text.lines().last().unwrap_or_default().trim())
}

/// A process killed on drop, with its output in a log file.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn spawn(command: &mut Command, log: PathBuf) -> Daemon {
        let file = std::fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        let child =
            command.stdout(file).stderr(err).spawn().unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        Daemon { child, log }
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(30).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// etcd and kube-apiserver on loopback (and kube-controller-manager once started); stopped on
/// drop.
pub struct KubeApi {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    ca_pem: Vec<u8>,
    // Fields drop in this order: the processes stop before their directories go.
    controller_manager: Option<Daemon>,
    apiserver: Daemon,
    etcd: Daemon,
    _etcd_data: tempfile::TempDir,
    pub dir: tempfile::TempDir,
}

impl KubeApi {
    /// Starts etcd and the API server and waits for `/readyz` and the `default` namespace.
    pub async fn start() -> KubeApi {
        let bin = kube_bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        // etcd's data on tmpfs when there is room (its WAL preallocates 64 MB): fsync on a real
        // disk would only slow the tests down.
        let shm_room = nix::sys::statvfs::statvfs("/dev/shm")
            .map(|v| v.blocks_available() * v.fragment_size())
            .unwrap_or(0);
        let etcd_data = if shm_room > 512 << 20 {
            tempfile::Builder::new().prefix("census-etcd").tempdir_in("/dev/shm")
        } else {
            tempfile::Builder::new().prefix("census-etcd").tempdir()
        }
        .expect("etcd data dir");
        let (client_port, peer_port) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd = Daemon::spawn(
            Command::new("etcd")
                .args(["--name", "census-test", "--data-dir"])
                .arg(etcd_data.path())
                .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &format!("census-test={peer_url}")])
                .env("ETCD_UNSUPPORTED_ARCH", go_arch()),
            dir.path().join("etcd.log"),
        );
        let certs = certificates(dir.path());
        let tokens = dir.path().join("tokens.csv");
        std::fs::write(
            &tokens,
            format!(
                "{ADMIN_TOKEN},admin,admin,\"system:masters\"\n{OPERATOR_TOKEN},{OPERATOR_USER},operator,\"system:serviceaccounts,system:serviceaccounts:{NAMESPACE}\"\n"
            ),
        )
        .expect("token file");
        // Every request the operator makes is recorded (metadata only), so a test can count them.
        let audit_policy = dir.path().join("audit-policy.json");
        let policy = json!({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
                            "rules": [{"level": "Metadata", "users": [OPERATOR_USER]}, {"level": "None"}]});
        std::fs::write(&audit_policy, policy.to_string()).expect("audit policy");
        let port = free_port();
        let apiserver = Daemon::spawn(
            Command::new(bin.join("kube-apiserver"))
                .args(["--etcd-servers", &client_url])
                .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
                .arg(format!("--secure-port={port}"))
                .arg(format!("--tls-cert-file={}", certs.cert.display()))
                .arg(format!("--tls-private-key-file={}", certs.key.display()))
                .arg(format!("--client-ca-file={}", certs.ca.display()))
                .arg(format!("--token-auth-file={}", tokens.display()))
                .arg("--authorization-mode=RBAC")
                .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
                // The public key, read from the serving certificate (1.20 reads no public key
                // out of a PKCS#8 private key).
                .arg(format!("--service-account-key-file={}", certs.cert.display()))
                .arg(format!("--service-account-signing-key-file={}", certs.key.display()))
                .arg("--service-cluster-ip-range=10.0.0.0/24")
                .arg("--disable-admission-plugins=ServiceAccount")
                .arg("--endpoint-reconciler-type=none")
                .arg("--profiling=false")
                .arg(format!("--audit-policy-file={}", audit_policy.display()))
                .arg(format!("--audit-log-path={}", dir.path().join("audit.log").display()))
                .arg(format!("--cert-dir={}", dir.path().join("apiserver-certs").display())),
            dir.path().join("kube-apiserver.log"),
        );
        let ca_pem = std::fs::read(&certs.ca).expect("ca");
        let mut api = KubeApi {
            url: format!("https://127.0.0.1:{port}"),
            ca_pem,
            dir,
            apiserver,
            controller_manager: None,
            etcd,
            _etcd_data: etcd_data,
        };
        api.wait_ready().await;
        api
    }

    async fn wait_ready(&mut self) {
        let admin = self.client(ADMIN_TOKEN);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready =
                admin.get(format!("{}/readyz", self.url)).send().await.is_ok_and(|r| r.status().is_success());
            let default_ns = ready
                && admin
                    .get(format!("{}/api/v1/namespaces/default", self.url))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
            if default_ns {
                return;
            }
            assert!(!self.etcd.exited(), "etcd exited:\n{}", self.etcd.tail());
            assert!(
                Instant::now() < deadline && !self.apiserver.exited(),
                "kube-apiserver not ready (exited, or not in 60 s):\n{}",
                self.apiserver.tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A client that trusts the API server's CA and sends `token`.
    pub fn client(&self, token: &str) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&self.ca_pem).expect("ca pem");
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("token header");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .default_headers(headers)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("https client")
    }

    /// A kubeconfig for `token` at `path` (what `KUBECONFIG` points the operator at).
    pub fn kubeconfig(&self, token: &str, path: &Path) -> PathBuf {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url, "certificate-authority-data": ca}}],
            "users": [{"name": "test", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test", "namespace": "default"}}],
        });
        std::fs::write(path, config.to_string()).expect("kubeconfig");
        path.to_path_buf()
    }

    /// Starts kube-controller-manager from the same build, as the admin, with the controllers
    /// that delete what a deleted namespace held and collect garbage (no kubelet, no nodes).
    pub fn start_controller_manager(&mut self) {
        let kubeconfig = self.kubeconfig(ADMIN_TOKEN, &self.dir.path().join("admin.kubeconfig"));
        let manager = Daemon::spawn(
            Command::new(kube_bin_dir().join("kube-controller-manager"))
                .arg(format!("--kubeconfig={}", kubeconfig.display()))
                .args(["--leader-elect=false", "--controllers=namespace,garbagecollector", "--port=0"])
                .args(["--secure-port=0", "--use-service-account-credentials=false"]),
            self.dir.path().join("kube-controller-manager.log"),
        );
        self.controller_manager = Some(manager);
    }

    /// The controller-manager's log, for failure messages.
    pub fn controller_manager_log_tail(&self) -> String {
        self.controller_manager.as_ref().map(Daemon::tail).unwrap_or_default()
    }

    /// How many requests the operator's user has made so far (from the audit log: one audit ID
    /// per request, a watch counted once), and how many the server refused with 403.
    pub fn operator_requests(&self) -> (usize, usize) {
        let log = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        let mut ids = std::collections::HashSet::new();
        let mut refused = std::collections::HashSet::new();
        for event in log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
            let id = event["auditID"].as_str().unwrap_or_default().to_string();
            if event["responseStatus"]["code"] == 403 {
                refused.insert(id.clone());
            }
            ids.insert(id);
        }
        (ids.len(), refused.len())
    }

    /// The API server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.apiserver.tail()
    }

    /// The full log of the API server (to search for 403s, say).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.apiserver.log).unwrap_or_default()
    }
}

/// This machine's architecture as Go names it (what etcd compares `ETCD_UNSUPPORTED_ARCH` with).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The paths `census tls` wrote: a CA and a serving certificate for 127.0.0.1.
struct Certificates {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn certificates(dir: &Path) -> Certificates {
    let run = |args: &[&str]| {
        let out = Command::new(crate::census_bin()).args(args).current_dir(dir).output().expect("census tls");
        assert!(out.status.success(), "census {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["tls", "ca", "create"]);
    run(&[
        "tls",
        "cert",
        "create",
        "--server",
        "--additional-ipaddress",
        "127.0.0.1",
        "--additional-dnsname",
        "localhost",
    ]);
    Certificates {
        ca: dir.join("consul-agent-ca.pem"),
        cert: dir.join("dc1-server-consul-0.pem"),
        key: dir.join("dc1-server-consul-0-key.pem"),
    }
}

/// The API's answer: status and JSON body.
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("API request");
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// `{url}/apis/GROUP/VERSION/namespaces/NS/PLURAL` (or `/api/v1/...` for the core group).
pub fn resources_url(api: &KubeApi, api_version: &str, plural: &str, namespace: Option<&str>) -> String {
    let base =
        if api_version.contains('/') { format!("apis/{api_version}") } else { format!("api/{api_version}") };
    match namespace {
        Some(ns) => format!("{}/{base}/namespaces/{ns}/{plural}", api.url),
        None => format!("{}/{base}/{plural}", api.url),
    }
}

/// Creates the CRDs `census crd` prints (as the README says to install them) and waits until
/// both are Established.
pub async fn install_crds(api: &KubeApi, admin: &reqwest::Client) {
    let out = Command::new(crate::census_bin()).arg("crd").output().expect("census crd");
    assert!(out.status.success(), "census crd failed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let url = resources_url(api, "apiextensions.k8s.io/v1", "customresourcedefinitions", None);
    let mut names = Vec::new();
    for doc in text.split("\n---\n").filter(|d| d.contains("kind: CustomResourceDefinition")) {
        let request = admin.post(&url).header("content-type", "application/yaml").body(doc.to_string());
        let (code, body) = send(request).await;
        assert_eq!(code, 201, "CRD refused: {body:#}");
        names.push(body["metadata"]["name"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(names.len(), 2, "census crd prints two CRDs: {names:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in names {
        loop {
            let (_, crd) = send(admin.get(format!("{url}/{name}"))).await;
            let established = crd["status"]["conditions"].as_array().is_some_and(|conditions| {
                conditions.iter().any(|c| c["type"] == "Established" && c["status"] == "True")
            });
            if established {
                break;
            }
            assert!(Instant::now() < deadline, "CRD {name} not Established: {crd:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Creates `obj` (JSON) with `client`; the status and the body the API answered.
pub async fn create(api: &KubeApi, client: &reqwest::Client, obj: &Value) -> (u16, Value) {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let plural = plural_of(obj["kind"].as_str().unwrap_or_default());
    let namespace = obj["metadata"]["namespace"].as_str();
    send(client.post(resources_url(api, api_version, &plural, namespace)).json(obj)).await
}

/// The resource name of the kinds these tests create.
pub fn plural_of(kind: &str) -> String {
    match kind {
        "KVEntry" => "kventries".into(),
        "Service" => "services".into(),
        "Pod" => "pods".into(),
        "ConfigMap" => "configmaps".into(),
        "Secret" => "secrets".into(),
        "Namespace" => "namespaces".into(),
        "ClusterRole" => "clusterroles".into(),
        "ClusterRoleBinding" => "clusterrolebindings".into(),
        "Role" => "roles".into(),
        "RoleBinding" => "rolebindings".into(),
        other => panic!("no plural known for {other}"),
    }
}

/// The chart's RBAC objects for `scope` (`cluster` or `namespace`), rendered by Helm's engine
/// (`scripts/chart_test/rbac_json.py`) for release `census` in namespace `census`.
pub fn chart_rbac(scope: &str) -> Vec<Value> {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    let out = Command::new("python3")
        .args(["-m", "chart_test.rbac_json", scope, NAMESPACE])
        .current_dir(scripts)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "rendering the chart's RBAC failed (scripts/chart-test.sh installs its Python packages): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("rbac json")
}
