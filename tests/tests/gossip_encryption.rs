//! Gossip encryption with real processes on loopback: a server and two client agents started with
//! `-encrypt` (a key from `census keygen`) form a pool; an agent with another key, or none, cannot
//! join and `census join` says why; `census keyring` rotates the key on every member (install,
//! use, remove) and lists who has which; after the rotation only the new key gets in, and a
//! restarted agent keeps the rotated keyring from its data dir over its `-encrypt` flag.

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use census_e2e::{Agent, census_bin, eventually, single_server};

const CONVERGE: Duration = Duration::from_secs(20);

fn census(args: &[&str]) -> Output {
    std::process::Command::new(census_bin()).args(args).output().expect("run census")
}

fn keygen() -> String {
    let out = census(&["keygen"]);
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn alive(agent: &Agent) -> Vec<String> {
    match agent.client().agent_members().await {
        Ok(members) => members.into_iter().filter(|m| m.status == 1).map(|m| m.name).collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits until `census keyring -list` through `agent` shows `want` (key → "[n/total]", LAN).
async fn wait_listed(agent: &Agent, want: &[(&str, &str)]) {
    let want: BTreeMap<String, String> = want.iter().map(|(k, n)| (k.to_string(), n.to_string())).collect();
    eventually(CONVERGE, &format!("keyring list at {}: {want:?}", agent.name), || async {
        (listed(agent) == want).then_some(())
    })
    .await;
}

/// `census keyring -list` through `agent`: key → "[n/total]" of the LAN pool.
fn listed(agent: &Agent) -> BTreeMap<String, String> {
    let out = census(&["keyring", "-list", "-http-addr", &agent.http_addr()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let lan = text.split("(LAN):").nth(1).unwrap_or_default();
    lan.lines()
        .filter_map(|l| l.trim().split_once(' '))
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect()
}

/// `census join ADDR` through `agent` once its HTTP API answers.
async fn join_when_up(agent: &Agent, addr: &str) -> Output {
    let client = agent.client();
    eventually(CONVERGE, &format!("{} to answer", agent.name), || async {
        client.agent_members().await.ok().map(drop)
    })
    .await;
    census(&["join", "-http-addr", &agent.http_addr(), addr])
}

fn keyring(agent: &Agent, op: &str, key: &str) -> Output {
    census(&["keyring", op, key, "-http-addr", &agent.http_addr()])
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_pool_refuses_other_keys_and_rotates() {
    let (old, new) = (keygen(), keygen());
    assert_ne!(old, new);
    let encrypt_old = format!("-encrypt={old}");
    let (server, dir) = single_server("server0", &[&encrypt_old]).await;
    server.wait_registered().await;
    let gossip_addr = format!("127.0.0.1:{}", server.serf_port);
    let mut clients: Vec<Agent> = (0..2)
        .map(|i| {
            let name = format!("client{i}");
            Agent::client_agent(&name, dir.path().join(&name), &server.raft_addr(), vec![encrypt_old.clone()])
        })
        .collect();
    for c in &mut clients {
        c.start();
    }
    for agent in [&server, &clients[0], &clients[1]] {
        eventually(CONVERGE, &format!("{} to see three encrypted members alive", agent.name), || async {
            (alive(agent).await.len() == 3).then_some(())
        })
        .await;
    }

    // Another key, or none: refused, and `census join` says why.
    let mut stranger = Agent::client_agent(
        "stranger",
        dir.path().join("stranger"),
        "127.0.0.1:1",
        vec![format!("-encrypt={}", keygen())],
    );
    let mut plain = Agent::client_agent("plain", dir.path().join("plain"), "127.0.0.1:1", Vec::new());
    for (agent, why) in
        [(&mut stranger, "gossip encryption keys"), (&mut plain, "requires gossip encryption")]
    {
        agent.start();
        let out = join_when_up(agent, &gossip_addr).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{} joined: {stderr}", agent.name);
        assert!(stderr.contains(why), "{}: {stderr}", agent.name);
        assert!(!alive(&server).await.contains(&agent.name), "{} is not a member", agent.name);
        agent.kill();
    }
    assert!(server.log().contains("No installed keys could decrypt the message"), "the server says why too");

    // Rotation, with every member confirming each step.
    wait_listed(&clients[0], &[(&old, "[3/3]")]).await;
    let out = keyring(&server, "-remove", &old);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Removing the primary key is not allowed"));
    assert!(!out.status.success());
    let out = keyring(&clients[1], "-use", &new);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in the keyring"), "use before install");
    for op in ["-install", "-use"] {
        let out = keyring(&clients[1], op, &new);
        assert!(out.status.success(), "{op}: {}", String::from_utf8_lossy(&out.stderr));
    }
    wait_listed(&server, &[(&old, "[3/3]"), (&new, "[3/3]")]).await;
    let out = keyring(&server, "-remove", &old);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_listed(&clients[0], &[(&new, "[3/3]")]).await;

    // Only the new key gets in now; a restarted member keeps the rotated keyring (its -encrypt
    // flag still names the old key).
    let mut latecomer = Agent::client_agent(
        "latecomer",
        dir.path().join("latecomer"),
        &server.raft_addr(),
        vec![format!("-encrypt={new}")],
    );
    latecomer.start();
    clients[0].kill();
    clients[0].start();
    eventually(CONVERGE, "the latecomer and the restarted client0 alive", || async {
        let names = alive(&server).await;
        (names.len() == 4
            && names.contains(&"latecomer".to_string())
            && names.contains(&"client0".to_string()))
        .then_some(())
    })
    .await;
    assert!(clients[0].log().contains("LAN keyring exists but -encrypt given, using keyring"));
    let mut old_key =
        Agent::client_agent("oldkey", dir.path().join("oldkey"), "127.0.0.1:1", vec![encrypt_old]);
    old_key.start();
    let out = join_when_up(&old_key, &gossip_addr).await;
    assert!(!out.status.success(), "the removed key no longer gets in");
    assert!(String::from_utf8_lossy(&out.stderr).contains("gossip encryption keys"));
}
