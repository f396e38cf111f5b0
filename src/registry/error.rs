//! Registry errors, each carrying the OCI error code and HTTP status it is
//! reported with.

use http::StatusCode;

use crate::storage::StorageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unsupported,
    TooManyRequests,
    Unauthorized,
    Denied,
    RangeInvalid,
    TooLarge,
    PaginationInvalid,
    Busy,
    /// A manifest an index in its repository lists: deleting it would break
    /// the index.
    InUse,
    StorageFull,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            // The spec has no code of its own for these two statuses; the
            // closest standard codes are used so clients still parse them.
            Code::RangeInvalid => "BLOB_UPLOAD_INVALID",
            Code::TooLarge => "SIZE_INVALID",
            Code::PaginationInvalid => "UNSUPPORTED",
            Code::Busy => "UNAVAILABLE",
            Code::InUse => "DENIED",
            Code::StorageFull | Code::Internal => "UNKNOWN",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Busy | Code::InUse => StatusCode::CONFLICT,
            Code::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct RegistryError {
    pub code: Code,
    pub message: String,
    pub detail: Option<serde_json::Value>,
    /// What the store said, for operators (the CLI, the admin API); never
    /// in an OCI answer, where a client would read paths and bucket names.
    pub cause: Option<String>,
}

pub type Result<T> = std::result::Result<T, RegistryError>;

impl RegistryError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        RegistryError {
            code,
            message: capped(message.into()),
            detail: None,
            cause: None,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Messages quote what the client sent (a name, a digest, a header); a
/// 60 KB name should not come back as a 60 KB error body and log line.
const MAX_MESSAGE: usize = 512;

fn capped(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

impl From<StorageError> for RegistryError {
    fn from(e: StorageError) -> Self {
        // Callers map the NotFound cases they expect to the right OCI code;
        // anything else reaching here is a fault of the store, except a body
        // the client cut short: that is the request's fault, and an operator
        // paged for "storage error" would look at the wrong thing.
        if e.is_body() {
            tracing::info!(error = %e, "request body incomplete; nothing stored");
            return RegistryError::new(Code::BlobUploadInvalid, format!("{e}; nothing was stored"));
        }
        tracing::error!(error = %e, "storage error");
        if e.is_full() {
            // The client's push cannot succeed until an operator frees space:
            // it says so, rather than a bare "storage error".
            return RegistryError::new(
                Code::StorageFull,
                "the registry's storage is full; nothing was stored",
            );
        }
        if e.is_read_only() {
            // Named, so that a push to a read-only mount says why.
            return RegistryError::new(
                Code::Internal,
                "the registry's storage is read-only; nothing was changed",
            );
        }
        RegistryError {
            cause: Some(capped(e.to_string())),
            ..RegistryError::new(Code::Internal, "storage error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_store_is_named() {
        let e = StorageError::Io(std::io::Error::from(std::io::ErrorKind::ReadOnlyFilesystem));
        let e = RegistryError::from(e);
        assert!(e.message.contains("read-only"), "{}", e.message);
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let e = RegistryError::new(Code::NameInvalid, "é".repeat(1000));
        assert!(e.message.len() <= MAX_MESSAGE + "…".len());
        assert!(e.message.ends_with("é…"));
        let short = RegistryError::new(Code::NameInvalid, "short");
        assert_eq!(short.message, "short");
    }

    #[test]
    fn a_full_disk_is_named_and_507() {
        for errno in [libc::ENOSPC, libc::EDQUOT] {
            let e: RegistryError =
                StorageError::Io(std::io::Error::from_raw_os_error(errno)).into();
            assert_eq!(e.code, Code::StorageFull);
            assert_eq!(e.code.status(), StatusCode::INSUFFICIENT_STORAGE);
            assert_eq!(e.code.as_str(), "UNKNOWN");
            assert!(e.message.contains("storage is full"), "{}", e.message);
        }
        let e: RegistryError = StorageError::Io(std::io::Error::other("boom")).into();
        assert_eq!(e.code, Code::Internal);
    }

    #[test]
    fn a_body_cut_short_is_the_requests_fault() {
        let e: RegistryError = StorageError::Io(crate::storage::BodyError::io("reset")).into();
        assert_eq!(e.code, Code::BlobUploadInvalid);
        assert_eq!(e.code.status(), StatusCode::BAD_REQUEST);
        assert!(e.message.contains("ended early"), "{}", e.message);
    }
}
