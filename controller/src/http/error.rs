//! API errors and the HTTP statuses Consul uses for them (plain-text bodies).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::raft::ClusterError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 403: the token lacks a permission, or names no token (`ACL not found`).
    #[error("{0}")]
    PermissionDenied(String),
    /// 401: an ACL endpoint while ACLs are off.
    #[error("ACL support disabled")]
    AclDisabled,
    #[error("{0}")]
    Internal(String),
    /// `?dc=` names a datacenter this agent has no route to.
    #[error("No path to datacenter")]
    UnknownDatacenter(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            ApiError::AclDisabled => StatusCode::UNAUTHORIZED,
            ApiError::Cluster(ClusterError::DiskFull { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Cluster(ClusterError::PermissionDenied(_)) => StatusCode::FORBIDDEN,
            ApiError::Internal(_) | ApiError::UnknownDatacenter(_) | ApiError::Cluster(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            // Consul clients match on this text.
            ApiError::Cluster(ClusterError::NoLeader) => {
                "rpc error making call: No cluster leader".to_string()
            }
            other => other.to_string(),
        };
        (status, [("Content-Type", "text/plain; charset=utf-8")], body).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
