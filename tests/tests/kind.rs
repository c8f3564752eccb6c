//! The README's "Kubernetes (kind or minikube)" flow on a real cluster. docker/build.sh builds the
//! images and `kind load docker-image` (or `minikube image load`) puts them on the nodes. Helm then
//! installs charts/census with the demo into a fresh namespace, and `kubectl apply -f
//! examples/kubernetes/` adds the census.dev Service `web` and two KVEntries. The test then checks:
//! - the Service turns Ready;
//! - the catalog answers it over HTTP, and DNS answers it over TCP, both through `kubectl
//!   port-forward`;
//! - the demo nginx reaches more than one web pod;
//! - the operator puts back an instance and a key changed behind its back;
//! - the passing count follows a scale to 5 web pods and back to 3;
//! - deleting the resources takes their instances out of the catalog, and their keys too (unless
//!   deletionPolicy is Retain).
//!
//! It is ignored by default (no Kubernetes cluster can run on the project's machines; issue 23
//! brings a real API server instead). `cargo test --test kind -- --ignored` runs it against the
//! current kubectl context, and fails with the reason when that context's cluster does not answer. It needs kubectl, helm and docker, plus `kind` for a
//! kind-* context or `minikube` for the minikube context. Any other context must see this Docker
//! engine's images, as Docker Desktop's does. Environment:
//! - `CENSUS_KIND_TAG`: the image tag to build and install (default `kind-e2e`);
//! - `CENSUS_KIND_SKIP_BUILD=1`: use images already built with that tag;
//! - `CENSUS_KIND_KEEP=1`: keep the namespace and the release after the test, to look around.
//!
//! Run it with `cargo test -p census-e2e --test kind -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use base64::Engine;
use census_e2e::{eventually, free_port};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use serde_json::{Value, json};

/// The Helm release. Its name contains "census", so the objects are named census-server, census
/// (the client Service), census-web and census-lb, and the demo pods carry
/// app.kubernetes.io/instance=census, which examples/kubernetes/service.yaml selects.
const RELEASE: &str = "census";
const IMAGES: [&str; 4] = ["census", "census-sidecar", "census-web", "census-lb"];
/// The demo web pods (charts/census/templates/demo-web.yaml).
const WEB_PODS: &str = "app.kubernetes.io/instance=census,app.kubernetes.io/component=demo-web";
const WEB_DEPLOYMENT: &str = "deployment/census-web";
const WEB_REPLICAS: usize = 3;
/// The census.dev Service of examples/kubernetes/service.yaml.
const SERVICE_CR: &str = "web";
/// The chart's server.domain.
const DOMAIN: &str = "consul";
/// The catalog node the operator registers on.
const NODE: &str = "k8s-sync";
const FINALIZER: &str = "census.dev/catalog";
/// Census's ownership mark in bits 48..64 of a key's flags.
const KEY_MARK: u64 = 0xCE05;
const HTTP_PORT: u16 = 8500;
const DNS_PORT: u16 = 8600;
/// For `kubectl rollout status`: the first server start includes pulling nothing, a PVC and an
/// election, but a slow machine may still take minutes.
const ROLLOUT_TIMEOUT: &str = "--timeout=600s";
const DELETE_TIMEOUT: &str = "--timeout=180s";
/// How long a state the cluster should reach may take.
const WAIT: Duration = Duration::from_secs(180);
/// The pause between two looks at the cluster while waiting.
const POLL: Duration = Duration::from_millis(500);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn repo_path(relative: &str) -> String {
    repo().join(relative).to_string_lossy().into_owned()
}

/// A progress line, with the time since the first one.
fn step(what: &str) {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    eprintln!("[kind {:>6.1}s] {what}", start.elapsed().as_secs_f64());
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn image_tag() -> String {
    std::env::var("CENSUS_KIND_TAG").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| "kind-e2e".into())
}

/// Whether an executable named `program` is in a directory of PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            dir.join(program).metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// An error on one line, for the message of a run that cannot start.
fn one_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let joined = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" | ");
    joined.chars().take(300).collect()
}

fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `cmd` to completion and returns its stdout. The error names the command line and gives
/// its exit status and the end of what it printed.
fn run(cmd: &mut Command) -> Result<String> {
    let line = command_line(cmd);
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{line}`"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}):\n{}\n{}",
            out.status,
            tail(&stdout, 30),
            tail(&String::from_utf8_lossy(&out.stderr), 30)
        );
    }
    Ok(stdout)
}

/// How the images reach the cluster's nodes.
enum Loader {
    /// `kind load docker-image --name CLUSTER`.
    Kind(String),
    /// `minikube -p PROFILE image load`.
    Minikube(String),
    /// The nodes use this machine's Docker engine (Docker Desktop).
    Shared,
}

struct Target {
    context: String,
    loader: Loader,
}

/// The cluster to test on, or why there is none.
fn preflight() -> Result<Target, String> {
    if !on_path("kubectl") {
        return Err("`kubectl` is not on PATH (this test needs a Kubernetes cluster, e.g. kind)".into());
    }
    let context = run(Command::new("kubectl").args(["config", "current-context"]))
        .map_err(|e| {
            format!("`kubectl config current-context` failed, no cluster is configured: {}", one_line(&e))
        })?
        .trim()
        .to_string();
    if context.is_empty() {
        return Err("`kubectl config current-context` names no context".into());
    }
    run(Command::new("kubectl").args(["--context", &context, "version", "--request-timeout=5s"])).map_err(
        |e| {
            format!(
                "the cluster of context {context} does not answer `kubectl version --request-timeout=5s`: {}",
                one_line(&e)
            )
        },
    )?;
    if !on_path("helm") {
        return Err("`helm` is not on PATH (the test installs charts/census with it)".into());
    }
    if let Err(e) = run(Command::new("docker").arg("info")) {
        return Err(format!(
            "docker is not usable (`docker info`: {}); the images are built with it",
            one_line(&e)
        ));
    }
    let loader = if let Some(cluster) = context.strip_prefix("kind-") {
        if !on_path("kind") {
            return Err(format!(
                "context {context} is a kind cluster, but `kind` (for `kind load docker-image`) is not on PATH"
            ));
        }
        Loader::Kind(cluster.to_string())
    } else if context == "minikube" {
        if !on_path("minikube") {
            return Err("context minikube, but `minikube` (for `minikube image load`) is not on PATH".into());
        }
        Loader::Minikube(context.clone())
    } else if std::env::var("CENSUS_E2E_ANY_CONTEXT").is_ok_and(|v| v == "1") {
        Loader::Shared
    } else {
        return Err(format!(
            "context {context} is neither kind-* nor minikube; set CENSUS_E2E_ANY_CONTEXT=1 to install into it \
             (the test builds images, installs a release and deletes its namespace afterwards)"
        ));
    };
    Ok(Target { context, loader })
}

/// Builds the images with docker/build.sh (unless CENSUS_KIND_SKIP_BUILD) and returns their names.
fn build_images(tag: &str) -> Result<Vec<String>> {
    let images: Vec<String> = IMAGES.iter().map(|i| format!("{i}:{tag}")).collect();
    if env_flag("CENSUS_KIND_SKIP_BUILD") {
        step("CENSUS_KIND_SKIP_BUILD: using the images already built");
        run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}"]).args(&images))
            .with_context(|| format!("the images are not built: run `TAG={tag} bash docker/build.sh`"))?;
    } else {
        step(&format!("building {} with docker/build.sh (minutes the first time)", images.join(", ")));
        run(Command::new("bash").arg(repo().join("docker/build.sh")).env("TAG", tag))?;
    }
    Ok(images)
}

fn load_images(target: &Target, images: &[String]) -> Result<()> {
    match &target.loader {
        Loader::Kind(cluster) => {
            step(&format!("kind load docker-image --name {cluster}"));
            run(Command::new("kind").args(["load", "docker-image", "--name", cluster]).args(images))?;
        }
        Loader::Minikube(profile) => {
            for image in images {
                step(&format!("minikube image load {image}"));
                run(Command::new("minikube").args(["-p", profile, "image", "load", image]))?;
            }
        }
        Loader::Shared => step(&format!(
            "context {} is neither kind nor minikube: assuming its nodes see this Docker engine's images",
            target.context
        )),
    }
    Ok(())
}

/// kubectl and helm, pinned to one context and namespace (a context switch meanwhile changes
/// nothing).
#[derive(Clone)]
struct Kube {
    context: String,
    namespace: String,
}

impl Kube {
    fn kubectl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.args(["--context", &self.context, "--namespace", &self.namespace]).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        run(&mut self.kubectl(args))
    }

    /// `kubectl ARGS -o json`, parsed.
    fn json(&self, args: &[&str]) -> Result<Value> {
        let out = self.run(&[args, &["-o", "json"]].concat())?;
        serde_json::from_str(&out)
            .with_context(|| format!("`kubectl {} -o json` printed no JSON", args.join(" ")))
    }

    fn helm(&self, args: &[&str]) -> Result<String> {
        run(Command::new("helm")
            .args(["--kube-context", &self.context, "--namespace", &self.namespace])
            .args(args))
    }

    /// The demo web pods that are Ready and not terminating: name → pod IP.
    fn web_pods(&self) -> Result<BTreeMap<String, String>> {
        let list = self.json(&["get", "pods", "-l", WEB_PODS])?;
        let mut pods = BTreeMap::new();
        for pod in list["items"].as_array().into_iter().flatten() {
            let ready = pod["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
            let (Some(name), Some(ip)) = (pod["metadata"]["name"].as_str(), pod["status"]["podIP"].as_str())
            else {
                continue;
            };
            if ready && !ip.is_empty() && pod["metadata"]["deletionTimestamp"].is_null() {
                pods.insert(name.to_string(), ip.to_string());
            }
        }
        Ok(pods)
    }
}

/// The status of condition `type_` of a census.dev object.
fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a str> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?["status"].as_str()
}

/// The test's namespace and Helm release. Dropping it deletes both; after a failure it first
/// prints what the cluster looked like.
struct Release {
    kube: Kube,
}

impl Release {
    fn create(kube: Kube) -> Result<Release> {
        step(&format!("creating namespace {} (context {})", kube.namespace, kube.context));
        kube.run(&["create", "namespace", &kube.namespace])?;
        Ok(Release { kube })
    }

    fn install(&self, tag: &str) -> Result<()> {
        // Helm installs charts/census/crds/ only when the CRDs are missing. Applying them first
        // makes sure the cluster has this tree's version.
        step("applying the census.dev CRDs");
        self.kube.run(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &repo_path("charts/census/crds/census.dev.yaml"),
        ])?;
        let values = [
            "demo.enabled=true".to_string(),
            format!("demo.web.replicas={WEB_REPLICAS}"),
            format!("image.tag={tag}"),
            // The images were loaded onto the nodes; nothing can be pulled.
            "image.pullPolicy=Never".into(),
            "demo.sidecarImage.pullPolicy=Never".into(),
            "demo.web.image.pullPolicy=Never".into(),
            "demo.lb.image.pullPolicy=Never".into(),
            // NodePorts are cluster-wide: keep off the README install's 30080 (the test
            // port-forwards instead).
            "demo.lb.service.type=ClusterIP".into(),
            // This release's operator reconciles this namespace only (-watch-namespace, a Role).
            "rbac.scope=namespace".into(),
        ];
        let chart = repo_path("charts/census");
        let mut args = vec!["install", RELEASE, chart.as_str()];
        for value in &values {
            args.extend(["--set", value.as_str()]);
        }
        step(&format!("helm install {RELEASE} charts/census --set {}", values.join(" --set ")));
        self.kube.helm(&args)?;
        for what in ["statefulset/census-server", WEB_DEPLOYMENT, "deployment/census-lb"] {
            step(&format!("kubectl rollout status {what}"));
            self.kube.run(&["rollout", "status", what, ROLLOUT_TIMEOUT])?;
        }
        Ok(())
    }

    /// What the namespace holds, the recent events and the pods' logs, on stderr.
    fn diagnostics(&self) {
        eprintln!("---- namespace {} after the failure ----", self.kube.namespace);
        let views = [
            "get all,pvc -o wide",
            "get services.census.dev,kventries.census.dev -o wide",
            "get events --sort-by=.lastTimestamp",
            "logs -l app.kubernetes.io/component=server --all-containers --prefix --tail=80",
            "logs -l app.kubernetes.io/component=demo-lb --all-containers --prefix --tail=30",
            "logs -l app.kubernetes.io/component=demo-web --all-containers --prefix --tail=20 --max-log-requests=20",
        ];
        for view in views {
            let args: Vec<&str> = view.split_whitespace().collect();
            match self.kube.kubectl(&args).stdin(Stdio::null()).output() {
                Ok(out) => eprintln!(
                    "$ kubectl {view}\n{}{}",
                    tail(&String::from_utf8_lossy(&out.stdout), 120),
                    tail(&String::from_utf8_lossy(&out.stderr), 10)
                ),
                Err(e) => eprintln!("$ kubectl {view}: {e}"),
            }
        }
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.diagnostics();
        }
        let (ns, ctx) = (&self.kube.namespace, &self.kube.context);
        if env_flag("CENSUS_KIND_KEEP") {
            eprintln!(
                "CENSUS_KIND_KEEP: kept namespace {ns}; clean up with\n  kubectl --context {ctx} -n {ns} delete \
                 csvc,ckv --all && helm --kube-context {ctx} -n {ns} uninstall {RELEASE} && kubectl --context \
                 {ctx} delete namespace {ns}"
            );
            return;
        }
        step(&format!("cleaning up namespace {ns}"));
        let quiet = |args: &[&str]| {
            let _ = self.kube.kubectl(args).stdin(Stdio::null()).output();
        };
        // The operator takes its finalizers off only while it runs: delete its objects first.
        quiet(&[
            "delete",
            "services.census.dev,kventries.census.dev",
            "--all",
            "--wait=true",
            "--timeout=90s",
        ]);
        let _ = self.kube.helm(&["uninstall", RELEASE, "--wait", "--timeout", "3m"]);
        // Objects the operator never finalized would hold the namespace in Terminating forever.
        if let Ok(names) = self.kube.run(&["get", "services.census.dev,kventries.census.dev", "-o", "name"]) {
            for name in names.lines().filter(|l| !l.trim().is_empty()) {
                quiet(&["patch", name.trim(), "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
            }
        }
        quiet(&["delete", "namespace", ns, "--wait=false"]);
    }
}

/// `kubectl port-forward` to a Service, on free local ports. kubectl gives a forward up after
/// some connection errors, so it is started again whenever it is found gone.
struct PortForward {
    kube: Kube,
    target: String,
    /// (local, remote).
    ports: Vec<(u16, u16)>,
    log: PathBuf,
    child: Mutex<Option<Child>>,
}

impl PortForward {
    fn start(kube: &Kube, target: &str, remote: &[u16], scratch: &Path) -> Result<PortForward> {
        let forward = PortForward {
            kube: kube.clone(),
            target: target.to_string(),
            ports: remote.iter().map(|&r| (free_port(), r)).collect(),
            log: scratch.join(format!("port-forward-{}.log", target.replace('/', "-"))),
            child: Mutex::new(None),
        };
        let child = forward.spawn()?;
        *forward.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
        step(&format!(
            "kubectl port-forward {target} {}",
            forward.ports.iter().map(|(l, r)| format!("{l}:{r}")).collect::<Vec<_>>().join(" ")
        ));
        Ok(forward)
    }

    fn spawn(&self) -> Result<Child> {
        let log = File::create(&self.log).with_context(|| format!("creating {}", self.log.display()))?;
        let mut args = vec!["port-forward".to_string(), self.target.clone()];
        args.extend(self.ports.iter().map(|(local, remote)| format!("{local}:{remote}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = self.kube.kubectl(&args);
        let line = command_line(&cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start `{line}`"))
    }

    /// The local port forwarded to `remote`, with kubectl started again first if it exited.
    fn local(&self, remote: u16) -> u16 {
        {
            let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
            let exited = match child.as_mut() {
                Some(c) => c.try_wait().ok().flatten().map(|status| status.to_string()),
                None => Some("not running".to_string()),
            };
            if let Some(status) = exited {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                eprintln!(
                    "kubectl port-forward {} exited ({status}): {}; starting it again",
                    self.target,
                    tail(&log, 3).trim()
                );
                *child = self.spawn().map_err(|e| eprintln!("{e:#}")).ok();
            }
        }
        self.ports
            .iter()
            .find(|(_, r)| *r == remote)
            .map(|(l, _)| *l)
            .expect("a port this forward was started for")
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// census's HTTP API and DNS, through the port-forward of the client Service.
struct Census<'a> {
    forward: &'a PortForward,
    http: reqwest::Client,
}

/// A key as the KV API shows it.
#[derive(Debug, Clone, PartialEq)]
struct StoredKey {
    value: String,
    flags: u64,
    modify_index: u64,
}

impl Census<'_> {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.forward.local(HTTP_PORT))
    }

    /// A successful GET's JSON; `None` on any failure.
    async fn get(&self, path: &str) -> Option<Value> {
        let resp = self.http.get(self.url(path)).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    async fn put(&self, path: &str, body: Vec<u8>) -> Result<()> {
        let resp =
            self.http.put(self.url(path)).body(body).send().await.with_context(|| format!("PUT {path}"))?;
        if !resp.status().is_success() {
            bail!("PUT {path}: {} {}", resp.status(), resp.text().await.unwrap_or_default());
        }
        Ok(())
    }

    /// `/v1/health/service/NAME` (only the passing instances with `passing`).
    async fn health(&self, service: &str, passing: bool) -> Option<Vec<Value>> {
        let query = if passing { "?passing" } else { "" };
        self.get(&format!("/v1/health/service/{service}{query}")).await?.as_array().cloned()
    }

    /// `Some(None)` when the key does not exist; `None` when the API did not answer.
    async fn key(&self, key: &str) -> Option<Option<StoredKey>> {
        let resp = self.http.get(self.url(&format!("/v1/kv/{key}"))).send().await.ok()?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Some(None);
        }
        if !resp.status().is_success() {
            return None;
        }
        let body: Value = resp.json().await.ok()?;
        let entry = body.as_array()?.first()?;
        let value = match entry["Value"].as_str() {
            Some(b64) => {
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).ok()?).ok()?
            }
            None => String::new(),
        };
        Some(Some(StoredKey {
            value,
            flags: entry["Flags"].as_u64().unwrap_or(0),
            modify_index: entry["ModifyIndex"].as_u64()?,
        }))
    }

    /// A resolver that asks census over TCP (a port-forward carries no UDP), caching nothing.
    fn resolver(&self) -> TokioResolver {
        let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.forward.local(DNS_PORT));
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.attempts = 1;
        opts.timeout = Duration::from_secs(3);
        TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, vec![], vec![NameServerConfig::new(server, Protocol::Tcp)]),
            TokioConnectionProvider::default(),
        )
        .with_options(opts)
        .build()
    }
}

/// [`eventually`] that pauses [`POLL`] between two looks (kubectl and the API server need not be
/// asked 40 times a second).
async fn poll<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let mut first = true;
    eventually(timeout, what, move || {
        let pause = if std::mem::take(&mut first) { Duration::ZERO } else { POLL };
        let look = check();
        async move {
            tokio::time::sleep(pause).await;
            look.await
        }
    })
    .await
}

fn service_ids(entries: &[Value]) -> BTreeSet<String> {
    entries.iter().filter_map(|e| e["Service"]["ID"].as_str().map(str::to_string)).collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

/// A KVEntry of examples/kubernetes and what its key should hold.
#[derive(Debug)]
struct ExpectedKey {
    entry: String,
    key: String,
    value: String,
    user_flags: u64,
    retain: bool,
    inline: bool,
}

fn expected_key(kube: &Kube, entry: &Value) -> Result<ExpectedKey> {
    let spec = &entry["spec"];
    let name = entry["metadata"]["name"].as_str().context("a KVEntry without a name")?.to_string();
    let key = spec["key"].as_str().with_context(|| format!("KVEntry {name}: no spec.key"))?.to_string();
    let inline = spec["value"].as_str();
    let value = match inline {
        Some(v) => v.to_string(),
        None => {
            let r = &spec["valueFrom"]["configMapKeyRef"];
            let (Some(cm), Some(cm_key)) = (r["name"].as_str(), r["key"].as_str()) else {
                bail!("KVEntry {name}: the test knows inline values and configMapKeyRef only");
            };
            let cm = kube.json(&["get", "configmap", cm])?;
            cm["data"][cm_key]
                .as_str()
                .with_context(|| format!("ConfigMap of {name}: no key {cm_key}"))?
                .to_string()
        }
    };
    Ok(ExpectedKey {
        entry: name,
        key,
        value,
        user_flags: spec["flags"].as_u64().unwrap_or(0),
        retain: spec["deletionPolicy"] == "Retain",
        inline: inline.is_some(),
    })
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Kubernetes cluster (kind or minikube), which cannot run on this machine"]
async fn readme_kubernetes_flow_on_a_real_cluster() {
    let target = preflight().unwrap_or_else(|reason| panic!("no cluster to run on: {reason}"));
    step(&format!("context {}: running the README's Kubernetes flow", target.context));
    let tag = image_tag();
    let images = build_images(&tag).unwrap_or_else(|e| panic!("{e:#}"));
    load_images(&target, &images).unwrap_or_else(|e| panic!("{e:#}"));
    let kube =
        Kube { context: target.context.clone(), namespace: format!("census-e2e-{}", std::process::id()) };
    // From here on, the namespace goes away however the test ends.
    let release = Release::create(kube).unwrap_or_else(|e| panic!("{e:#}"));
    let scratch = tempfile::tempdir().expect("scratch dir");
    if let Err(e) = readme_flow(&release, &tag, scratch.path()).await {
        panic!("{e:#}");
    }
}

async fn readme_flow(release: &Release, tag: &str, scratch: &Path) -> Result<()> {
    release.install(tag)?;
    let kube = &release.kube;
    let ns = kube.namespace.as_str();
    let api = PortForward::start(kube, "svc/census", &[HTTP_PORT, DNS_PORT], scratch)?;
    let lb = PortForward::start(kube, "svc/census-lb", &[80], scratch)?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let census = Census { forward: &api, http: http.clone() };
    poll(WAIT, "census's HTTP API to answer through the port-forward, with a leader", || async {
        let leader = census.get("/v1/status/leader").await?;
        leader.as_str().is_some_and(|l| !l.is_empty()).then_some(())
    })
    .await;

    step("kubectl apply -f examples/kubernetes/");
    kube.run(&["apply", "-f", &repo_path("examples/kubernetes")])?;

    // The Service resource: Ready, with every web pod an instance that passes.
    let cr = poll(WAIT, "Service web to be Ready and Synced with every web pod passing", || async {
        let pods = kube.web_pods().ok()?;
        let cr = kube.json(&["get", "csvc", SERVICE_CR]).ok()?;
        let status = &cr["status"];
        let all = Some(WEB_REPLICAS as u64);
        (condition(&cr, "Ready") == Some("True")
            && condition(&cr, "Synced") == Some("True")
            && pods.len() == WEB_REPLICAS
            && status["instances"].as_u64() == all
            && status["passing"].as_u64() == all)
            .then_some(cr)
    })
    .await;
    step("Service web is Ready");
    let spec = &cr["spec"];
    let service =
        cr["status"]["serviceName"].as_str().context("Service web: no status.serviceName")?.to_string();
    assert_eq!(service, spec["name"].as_str().unwrap_or(SERVICE_CR), "status.serviceName");
    assert!(strings(&cr["metadata"]["finalizers"]).contains(FINALIZER), "finalizer {FINALIZER}: {cr}");
    let port = spec["port"].as_u64().context("Service web: no spec.port")?;
    let tags = strings(&spec["tags"]);
    let owner = format!("{ns}/{SERVICE_CR}");
    let instance_ids = |pods: &BTreeMap<String, String>| -> BTreeSet<String> {
        pods.keys().map(|pod| format!("{ns}-{SERVICE_CR}-{pod}")).collect()
    };

    // The catalog over HTTP: one passing instance per pod, on k8s-sync, owned by the resource.
    let (pods, entries) = poll(WAIT, "the catalog to hold every web pod as a passing instance", || async {
        let pods = kube.web_pods().ok()?;
        let entries = census.health(&service, true).await?;
        (pods.len() == WEB_REPLICAS && service_ids(&entries) == instance_ids(&pods))
            .then_some((pods, entries))
    })
    .await;
    for entry in &entries {
        let id = entry["Service"]["ID"].as_str().unwrap_or_default();
        let pod = id.strip_prefix(&format!("{ns}-{SERVICE_CR}-")).unwrap_or_default();
        assert_eq!(entry["Node"]["Node"], NODE, "node of {id}");
        assert_eq!(
            entry["Service"]["Address"].as_str(),
            pods.get(pod).map(String::as_str),
            "address of {id}"
        );
        assert_eq!(entry["Service"]["Port"].as_u64(), Some(port), "port of {id}");
        assert_eq!(strings(&entry["Service"]["Tags"]), tags, "tags of {id}");
        assert_eq!(entry["Service"]["Meta"]["census-owner"], owner.as_str(), "owner of {id}");
        assert_eq!(entry["Service"]["Meta"]["external-source"], "kubernetes", "source of {id}");
    }
    let services = census.get("/v1/catalog/services").await.context("GET /v1/catalog/services")?;
    assert!(services.get(&service).is_some(), "{service} missing from /v1/catalog/services: {services}");
    step(&format!("the catalog lists {service}: {:?}", service_ids(&entries)));

    // DNS, over TCP through the same port-forward.
    let name = format!("{service}.service.{DOMAIN}.");
    poll(WAIT, &format!("DNS to answer {name} with the web pods' IPs"), || async {
        let want: BTreeSet<IpAddr> =
            kube.web_pods().ok()?.values().filter_map(|ip| ip.parse().ok()).collect();
        let got: BTreeSet<IpAddr> = census.resolver().lookup_ip(name.as_str()).await.ok()?.iter().collect();
        (!want.is_empty() && got == want).then_some(())
    })
    .await;
    step(&format!("DNS answers {name}"));

    // The demo: nginx, kept pointed at the healthy web pods by the render sidecar.
    let answered = poll(WAIT, "the demo nginx to answer from more than one web pod", || async {
        let pods = kube.web_pods().ok()?;
        let mut answered = BTreeSet::new();
        for _ in 0..12 {
            let resp = http.get(format!("http://127.0.0.1:{}/", lb.local(80))).send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let body = resp.text().await.ok()?.trim().to_string();
            if !pods.contains_key(&body) {
                return None;
            }
            answered.insert(body);
        }
        (answered.len() >= 2).then_some(answered)
    })
    .await;
    step(&format!("nginx reached {answered:?}"));

    // Drift repair: an instance deregistered behind the operator's back comes back.
    let catalog_path = format!("/v1/catalog/service/{service}");
    let victim = service_ids(&entries).into_iter().next().context("no instance")?;
    let create_index = |list: &Value| -> Option<u64> {
        list.as_array()?.iter().find(|e| e["ServiceID"] == victim.as_str())?["CreateIndex"].as_u64()
    };
    let before =
        census.get(&catalog_path).await.as_ref().and_then(create_index).context("the victim's index")?;
    census
        .put("/v1/catalog/deregister", serde_json::to_vec(&json!({"Node": NODE, "ServiceID": victim}))?)
        .await?;
    poll(WAIT, &format!("the operator to register {victim} again"), || async {
        let list = census.get(&catalog_path).await?;
        (create_index(&list)? > before).then_some(())
    })
    .await;
    poll(WAIT, "a DriftRepaired Event about Service web", || async {
        let events = kube.json(&["get", "events", "--field-selector", "reason=DriftRepaired"]).ok()?;
        events["items"].as_array()?.iter().any(|e| e["involvedObject"]["name"] == SERVICE_CR).then_some(())
    })
    .await;
    step(&format!("{victim}, deregistered behind census's back, is back"));

    // The KVEntries: Ready, their keys written with census's mark above the user's flags.
    let items = poll(WAIT, "every KVEntry of examples/kubernetes to be Ready", || async {
        let list = kube.json(&["get", "ckv"]).ok()?;
        let items = list["items"].as_array()?.clone();
        (!items.is_empty() && items.iter().all(|e| condition(e, "Ready") == Some("True"))).then_some(items)
    })
    .await;
    let keys = items.iter().map(|e| expected_key(kube, e)).collect::<Result<Vec<_>>>()?;
    for want in &keys {
        poll(WAIT, &format!("key {} to hold KVEntry {}'s value", want.key, want.entry), || async {
            let have = census.key(&want.key).await??;
            (have.value == want.value
                && have.flags >> 48 == KEY_MARK
                && have.flags & 0xffff_ffff == want.user_flags)
                .then_some(())
        })
        .await;
    }
    step(&format!("keys written: {:?}", keys.iter().map(|k| k.key.as_str()).collect::<Vec<_>>()));
    if let Some(want) = keys.iter().find(|k| k.inline) {
        let before = census.key(&want.key).await.flatten().context("the key's index")?.modify_index;
        census.put(&format!("/v1/kv/{}", want.key), b"changed behind census's back".to_vec()).await?;
        poll(WAIT, &format!("the operator to restore key {}", want.key), || async {
            let have = census.key(&want.key).await??;
            (have.modify_index > before && have.value == want.value && have.flags >> 48 == KEY_MARK)
                .then_some(())
        })
        .await;
        step(&format!("key {}, overwritten behind census's back, is restored", want.key));
    }

    // Scaling: the catalog's passing count and the resource's status follow the pods.
    for replicas in [5, WEB_REPLICAS] {
        step(&format!("kubectl scale {WEB_DEPLOYMENT} --replicas={replicas}"));
        kube.run(&["scale", WEB_DEPLOYMENT, &format!("--replicas={replicas}")])?;
        poll(
            WAIT,
            &format!("{replicas} web instances, all passing, in the catalog and the status"),
            || async {
                let pods = kube.web_pods().ok()?;
                let all = census.health(&service, false).await?;
                let passing = census.health(&service, true).await?;
                let cr = kube.json(&["get", "csvc", SERVICE_CR]).ok()?;
                let want = instance_ids(&pods);
                let count = Some(replicas as u64);
                (pods.len() == replicas
                    && service_ids(&all) == want
                    && service_ids(&passing) == want
                    && cr["status"]["instances"].as_u64() == count
                    && cr["status"]["passing"].as_u64() == count)
                    .then_some(())
            },
        )
        .await;
        step(&format!("{replicas} passing instances"));
    }

    // Deleting the resources: the finalizers hold them until the catalog let go.
    step(&format!("kubectl delete csvc {SERVICE_CR}"));
    kube.run(&["delete", "csvc", SERVICE_CR, DELETE_TIMEOUT])?;
    poll(WAIT, &format!("{service}'s instances to leave the catalog"), || async {
        let all = census.health(&service, false).await?;
        let services = census.get("/v1/catalog/services").await?;
        (all.is_empty() && services.get(&service).is_none()).then_some(())
    })
    .await;
    step(&format!("{service} left the catalog"));
    step("kubectl delete ckv --all");
    kube.run(&["delete", "ckv", "--all", DELETE_TIMEOUT])?;
    for want in &keys {
        let what = if want.retain { "kept, released (Retain)" } else { "deleted (Delete)" };
        poll(WAIT, &format!("key {} to be {what}", want.key), || async {
            match census.key(&want.key).await? {
                None => (!want.retain).then_some(()),
                Some(have) => {
                    (want.retain && have.value == want.value && have.flags == want.user_flags).then_some(())
                }
            }
        })
        .await;
        step(&format!("key {}: {what}", want.key));
    }
    Ok(())
}
