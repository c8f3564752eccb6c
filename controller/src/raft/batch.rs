//! Group commit at the Raft layer: writes that arrive while earlier ones are in flight are
//! proposed together as one `Command::Batch` entry, so one append, one replication round and one
//! fsync serve many clients. A lone write is proposed as itself.

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::types::Raft;
use crate::catalog::{Command, CommandResult};

/// The most writes in one entry.
const MAX_BATCH: usize = 256;
/// Entries proposed and not yet committed at once; more writes wait and join the next batch.
const IN_FLIGHT: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteFailure {
    /// This server is not (or no longer) the leader.
    NotLeader,
    Failed(String),
}

type Reply = oneshot::Sender<Result<(u64, CommandResult), WriteFailure>>;

/// Hands writes to the batching task.
pub struct WriteBatcher {
    queue: mpsc::UnboundedSender<(Command, Reply)>,
}

impl WriteBatcher {
    pub fn start(raft: Raft) -> WriteBatcher {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        WriteBatcher { queue }
    }

    /// Proposes `cmd` (possibly with others) and returns its log index and its own result.
    /// Commands that carry a time get this (the leader's) wall clock.
    pub async fn write(&self, mut cmd: Command) -> Result<(u64, CommandResult), WriteFailure> {
        cmd.stamp(wall_clock_ms());
        let (tx, rx) = oneshot::channel();
        self.queue.send((cmd, tx)).map_err(|_| WriteFailure::Failed("shutting down".into()))?;
        rx.await.unwrap_or_else(|_| Err(WriteFailure::Failed("shutting down".into())))
    }
}

/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn failure(e: RaftError<u64, ClientWriteError<u64, super::types::ServerNode>>) -> WriteFailure {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => WriteFailure::NotLeader,
        other => WriteFailure::Failed(other.to_string()),
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<(Command, Reply)>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let Some(first) = rx.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let _permit = permit;
            propose(&raft, batch).await;
        });
    }
}

async fn propose(raft: &Raft, mut batch: Vec<(Command, Reply)>) {
    if batch.len() == 1
        && let Some((cmd, reply)) = batch.pop()
    {
        let result = raft.client_write(cmd).await.map(|r| (r.log_id.index, r.data)).map_err(failure);
        let _ = reply.send(result);
        return;
    }
    let (commands, replies): (Vec<Command>, Vec<Reply>) = batch.into_iter().unzip();
    match raft.client_write(Command::Batch(commands)).await {
        Ok(resp) => {
            let index = resp.log_id.index;
            let results = match resp.data {
                CommandResult::Batch(results) => results,
                other => vec![other; replies.len()],
            };
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok((index, result)));
            }
        }
        Err(e) => {
            let f = failure(e);
            for reply in replies {
                let _ = reply.send(Err(f.clone()));
            }
        }
    }
}
