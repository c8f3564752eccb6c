//! `/v1/snapshot`: saving and restoring a whole catalog, with progress reports for large ones.

use reqwest::Method;

use crate::client::{Client, ClientError, Result, query_meta, status_error};

/// Bytes moved so far and, when known, in all.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, Option<u64>) + Send);

impl Client {
    /// `GET /v1/snapshot`: the archive and the index it was taken at.
    pub async fn snapshot_save(&self, stale: bool, progress: Progress<'_>) -> Result<(Vec<u8>, u64)> {
        let transport = |source| ClientError::Transport { addr: self.base_url().to_string(), source };
        let mut req = self.request(Method::GET, "/v1/snapshot");
        if stale {
            req = req.query(&[("stale", "")]);
        }
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let meta = query_meta(resp.headers());
        let total = resp.content_length();
        let mut body = Vec::with_capacity(total.unwrap_or(0) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            body.extend_from_slice(&chunk);
            progress(body.len() as u64, total);
        }
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        Ok((body, meta.last_index))
    }

    /// `PUT /v1/snapshot`: replaces the cluster's catalog with `archive`.
    pub async fn snapshot_restore(
        &self,
        archive: Vec<u8>,
        progress: Box<dyn FnMut(u64, Option<u64>) + Send + Sync>,
    ) -> Result<()> {
        const PART: usize = 64 * 1024;
        let total = archive.len() as u64;
        let parts: Vec<Vec<u8>> = archive.chunks(PART).map(<[u8]>::to_vec).collect();
        let mut sent = 0u64;
        let mut progress = progress;
        let stream = futures::stream::iter(parts.into_iter().map(move |part| {
            sent += part.len() as u64;
            progress(sent, Some(total));
            Ok::<_, std::io::Error>(part)
        }));
        let transport = |source| ClientError::Transport { addr: self.base_url().to_string(), source };
        let resp = self
            .request(Method::PUT, "/v1/snapshot")
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        Ok(())
    }
}
