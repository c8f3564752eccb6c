//! py-consul's own test suite (the tests of the py-consul 1.8.0 sdist from PyPI, unchanged) run
//! against census by our fixture `tests/py/py_consul_suite/conftest.py`, which starts a fresh
//! `census agent -dev` where the suite would start a `hashicorp/consul` container.
//!
//! The tests that need a part census does not have yet are listed, each with its reason, in
//! `docs/compatibility.md`; this test fails when any other test fails, when a listed test passes
//! (the list must shrink as census grows), and when the counts written there are not this run's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use census_e2e::{census_bin, python};

const SUITE: &str = "py_consul-1.8.0";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

/// Where `scripts/test.sh` unpacks the sdist (`scripts/py-consul-suite.sh`).
fn sdist() -> PathBuf {
    repo().join("target").join("py-consul").join(SUITE)
}

/// The listed tests of `docs/compatibility.md` (rows of the py-consul table: `| \`node id\` | why |`)
/// and the sentence with the counts.
struct Documented {
    expected_failures: BTreeSet<String>,
    counts_line: Option<String>,
}

fn documented() -> Documented {
    let text = std::fs::read_to_string(repo().join("docs/compatibility.md")).expect("docs/compatibility.md");
    let expected_failures = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `tests/"))
        .filter_map(|rest| rest.split_once('`').map(|(id, _)| format!("tests/{id}")))
        .collect();
    let counts_line =
        text.lines().find(|l| l.starts_with("py-consul 1.8.0's suite on census:")).map(str::to_string);
    Documented { expected_failures, counts_line }
}

/// pytest's `-rA` summary lines: `PASSED id`, `FAILED id - message`, `ERROR id - message`.
fn outcomes(stdout: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut passed = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for line in stdout.lines() {
        let (outcome, rest) = line.split_once(' ').unwrap_or((line, ""));
        let id = rest.split(" - ").next().unwrap_or(rest).trim().to_string();
        match outcome {
            "PASSED" => {
                passed.insert(id);
            }
            "FAILED" | "ERROR" => {
                failed.insert(id);
            }
            _ => {}
        }
    }
    (passed, failed)
}

fn port_8500_is_free() -> bool {
    std::net::TcpListener::bind(("127.0.0.1", 8500)).is_ok()
}

#[test]
fn py_consul_own_suite_passes_outside_the_listed_areas() {
    let suite = sdist();
    assert!(
        suite.join("tests").is_dir(),
        "{} is missing: the test command (bash scripts/test.sh) downloads py-consul's sdist there",
        suite.display()
    );
    // The suite's HTTP checks probe http://localhost:8500: Consul itself inside its container.
    assert!(port_8500_is_free(), "127.0.0.1:8500 is taken: stop the agent listening there and run again");
    let work = tempfile::tempdir().expect("tempdir");
    let fixture = repo().join("tests/py/py_consul_suite");
    for dir in ["consul", "tests"] {
        let status = Command::new("cp").arg("-r").arg(suite.join(dir)).arg(work.path()).status().expect("cp");
        assert!(status.success(), "copy {dir}");
    }
    for file in ["conftest.py", "pytest.ini"] {
        std::fs::copy(fixture.join(file), work.path().join(file)).expect("copy the fixture");
    }
    let logs = repo().join("target/py-consul/logs");
    let out = Command::new(python())
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q", "--color=no", "tests"])
        .current_dir(work.path())
        .env("CENSUS_BIN", census_bin())
        .env("CENSUS_PY_LOGS", &logs)
        .output()
        .expect("run pytest (the test command installs it in target/py-venv)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (passed, failed) = outcomes(&stdout);
    assert!(!passed.is_empty(), "pytest ran nothing:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let docs = documented();
    let unexpected: Vec<&String> = failed.difference(&docs.expected_failures).collect();
    let now_passing: Vec<&String> = passed.intersection(&docs.expected_failures).collect();
    let total = passed.len() + failed.len();
    let counts = format!(
        "py-consul 1.8.0's suite on census: {} of {total} tests pass; the {} that fail are listed below.",
        passed.len(),
        failed.len()
    );
    assert!(
        unexpected.is_empty(),
        "py-consul tests failed that docs/compatibility.md does not list:\n{}\n\npytest output:\n{stdout}\nagent logs: {}",
        unexpected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n"),
        logs.display()
    );
    assert!(
        now_passing.is_empty(),
        "listed as failing in docs/compatibility.md but passing now (remove them from the list):\n{}",
        now_passing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(
        docs.counts_line.as_deref(),
        Some(counts.as_str()),
        "docs/compatibility.md must state this run's counts"
    );
}
