//! `census-sidecar render` run as consul-template is: its command line (`-template in:out -once
//! -dry`, `-exec` with its reload and kill signals) and its own HCL config file, as written.

use std::path::Path;
use std::time::Duration;

use census_e2e::sidecar::Sidecar;
use census_e2e::{eventually, single_server};

/// consul-template's command line as written: `-template in:out -once -dry -max-stale 10m
/// -pid-file F` prints `> out` and the text, and writes nothing but the pid file.
#[tokio::test(flavor = "multi_thread")]
async fn dry_once_prints_the_output_instead_of_writing_it() {
    let (agent, _agent_dir) = single_server("render-go-dry", &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("app.tmpl");
    std::fs::write(
        &template,
        "{{ range services }}{{ .Name }} {{ end }}port={{ keyOrDefault \"app/port\" \"80\" }}\n",
    )
    .expect("write");
    let dest = dir.path().join("out/app.conf");
    let spec = format!("{}:{}", template.display(), dest.display());
    let pid_file = dir.path().join("sidecar.pid");
    let out = std::process::Command::new(census_e2e::sidecar_bin())
        .args(["render", "-consul-addr", &agent.http_addr(), "-template", &spec, "-once", "-dry"])
        .args(["-max-stale", "10m", "-pid-file", &pid_file.display().to_string()])
        .output()
        .expect("run census-sidecar");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, format!("> {}\nconsul port=80\n", dest.display()));
    assert!(!dest.exists(), "-dry writes nothing");
    let pid = std::fs::read_to_string(&pid_file).expect("-pid-file written");
    assert!(pid.trim().parse::<u32>().is_ok(), "{pid:?}");
}

/// `-exec` with consul-template's `-exec-reload-signal` and `-exec-kill-signal`.
#[tokio::test(flavor = "multi_thread")]
async fn exec_gets_the_configured_reload_and_kill_signals() {
    let (agent, _agent_dir) = single_server("render-go-exec", &[]).await;
    let client = agent.client();
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("app.ctmpl");
    std::fs::write(&template, "v={{ keyOrDefault \"app/v\" \"0\" }}\n").expect("write");
    let (out, signals) = (dir.path().join("app.conf"), dir.path().join("signals.log"));
    let script = format!(
        "trap 'echo usr1 >> {log}' USR1; trap 'echo usr2 >> {log}; exit 0' USR2; while :; do sleep 0.05; done",
        log = signals.display()
    );
    let args = [
        "render".to_string(),
        "-consul-addr".into(),
        agent.http_addr(),
        "-template".into(),
        format!("{}:{}", template.display(), out.display()),
        "-exec".into(),
        format!("sh -c \"{script}\""),
        "-exec-reload-signal".into(),
        "SIGUSR1".into(),
        "-exec-kill-signal".into(),
        "usr2".into(),
        "-status-addr".into(),
        "off".into(),
    ];
    let mut sidecar = Sidecar::spawn(&args, &[], &dir.path().join("sidecar.log"));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    eventually(Duration::from_secs(10), "the first render", || async {
        (read(&out) == "v=0\n").then_some(())
    })
    .await;
    // The command starts after the first render: give its traps a moment before the change.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.kv_put("app/v", b"1", census_client::KvWriteOptions::default()).await.expect("put");
    eventually(Duration::from_secs(10), "SIGUSR1 after the change", || async {
        (read(&signals) == "usr1\n").then_some(())
    })
    .await;
    assert_eq!(sidecar.terminate(Duration::from_secs(10)), Some(true), "{}", sidecar.log());
    assert_eq!(read(&signals), "usr1\nusr2\n", "SIGTERM to the sidecar became SIGUSR2 to the command");
}

/// consul-template's own HCL config file, as written for consul-template, run by `-config`.
#[tokio::test(flavor = "multi_thread")]
async fn a_consul_template_hcl_config_runs_as_written() {
    let (agent, _agent_dir) = single_server("render-go-hcl", &[]).await;
    let client = agent.client();
    client.kv_put("app/port", b"8081", census_client::KvWriteOptions::default()).await.expect("put");
    let dir = tempfile::tempdir().expect("tempdir");
    // Not a Go-template extension: a consul-template config makes every template a Go one.
    let template = dir.path().join("app.conf.in");
    std::fs::write(&template, "listen [[ key \"app/port\" ]];\n[[ range services ]][[ .Name ]] [[ end ]]\n")
        .expect("write");
    let (dest, reloaded) = (dir.path().join("app.conf"), dir.path().join("reloaded"));
    let config = dir.path().join("consul-template.hcl");
    let hcl = format!(
        r#"# consul-template's config
consul {{
  address = "{addr}"
}}
max_stale = "10m"
wait {{
  min = "50ms"
  max = "1s"
}}
template {{
  source          = "{source}"
  destination     = "{dest}"
  command         = ["sh", "-c", "echo yes > {reloaded}"]
  perms           = 0600
  backup          = true
  left_delimiter  = "[["
  right_delimiter = "]]"
}}
"#,
        addr = agent.http_addr(),
        source = template.display(),
        dest = dest.display(),
        reloaded = reloaded.display(),
    );
    std::fs::write(&config, hcl).expect("write");
    let args = ["render", "-config", &config.display().to_string(), "-once"].map(String::from);
    let (ok, stderr) = Sidecar::run(&args, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(std::fs::read_to_string(&dest).expect("rendered"), "listen 8081;\nconsul \n");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dest).expect("stat").permissions());
    assert_eq!(mode & 0o777, 0o600, "perms = 0600");
    assert_eq!(std::fs::read_to_string(&reloaded).expect("command ran"), "yes\n");
    assert!(
        stderr.contains("max_stale") && stderr.contains("no effect"),
        "ignored settings are reported: {stderr}"
    );

    std::fs::write(&config, "consul {\n  adress = \"x\"\n}\n").expect("write");
    let (ok, stderr) = Sidecar::run(&args, &[]);
    assert!(!ok && stderr.contains("consul.adress: unknown setting"), "{stderr}");
}

/// `-config` on a directory reads its files in name order (later over earlier, templates added),
/// and a template given inline (`contents`) renders like one read from a file.
#[tokio::test(flavor = "multi_thread")]
async fn a_config_directory_with_an_inline_template_runs() {
    let (agent, _agent_dir) = single_server("render-go-confdir", &[]).await;
    let client = agent.client();
    client.kv_put("app/name", b"shop", census_client::KvWriteOptions::default()).await.expect("put");
    let dir = tempfile::tempdir().expect("tempdir");
    let confd = dir.path().join("conf.d");
    std::fs::create_dir(&confd).expect("mkdir");
    let dest = dir.path().join("name.txt");
    // The first file names an address nothing listens on; the second, read later, replaces it.
    std::fs::write(confd.join("10-consul.hcl"), "consul {\n  address = \"127.0.0.1:1\"\n}\n").expect("write");
    std::fs::write(
        confd.join("20-agent.hcl"),
        format!("consul {{\n  address = \"{}\"\n}}\n", agent.http_addr()),
    )
    .expect("write");
    let template = format!(
        "template {{\n  contents    = \"name={{{{ key \\\"app/name\\\" }}}}\\n\"\n  destination = \"{}\"\n  wait {{\n    min = \"10ms\"\n  }}\n}}\n",
        dest.display()
    );
    std::fs::write(confd.join("30-template.hcl"), template).expect("write");
    let args = ["render", "-config", &confd.display().to_string(), "-once"].map(String::from);
    let (ok, stderr) = Sidecar::run(&args, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(std::fs::read_to_string(&dest).expect("rendered"), "name=shop\n");
}

/// A template's own `wait` holds only that template after a change: the other template reading
/// the same key is rewritten at once, the one with `wait { min = "3s" }` once the key has been
/// quiet for 3 s.
#[tokio::test(flavor = "multi_thread")]
async fn a_per_template_wait_holds_only_its_template() {
    let (agent, _agent_dir) = single_server("render-go-template-wait", &[]).await;
    let client = agent.client();
    let put = |v: &'static str| {
        let client = client.clone();
        async move {
            client.kv_put("app/v", v.as_bytes(), census_client::KvWriteOptions::default()).await.expect("put")
        }
    };
    put("1").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (fast, slow) = (dir.path().join("fast.txt"), dir.path().join("slow.txt"));
    let block = |dest: &Path, wait: &str| {
        format!(
            "template {{\n  contents = \"v={{{{ key \\\"app/v\\\" }}}}\"\n  destination = \"{}\"\n{wait}}}\n",
            dest.display()
        )
    };
    let config = dir.path().join("ct.hcl");
    let text = format!(
        "consul {{\n  address = \"{}\"\n}}\n{}{}",
        agent.http_addr(),
        block(&fast, ""),
        block(&slow, "  wait {\n    min = \"3s\"\n    max = \"10s\"\n  }\n")
    );
    std::fs::write(&config, text).expect("write");
    let args = ["render", "-config", &config.display().to_string(), "-status-addr", "off"].map(String::from);
    let sidecar = Sidecar::spawn(&args, &[], &dir.path().join("sidecar.log"));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    eventually(Duration::from_secs(10), "both written", || async {
        (read(&fast) == "v=1" && read(&slow) == "v=1").then_some(())
    })
    .await;
    put("2").await;
    eventually(Duration::from_secs(10), "the template without a wait rewritten", || async {
        (read(&fast) == "v=2").then_some(())
    })
    .await;
    assert_eq!(read(&slow), "v=1", "held by its own 3 s wait: {}", sidecar.log());
    eventually(Duration::from_secs(10), "the held template rewritten after its wait", || async {
        (read(&slow) == "v=2").then_some(())
    })
    .await;
}
