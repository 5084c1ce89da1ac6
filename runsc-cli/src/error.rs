//! The error type of `runsc` (the library's: one enum for both) and the exit statuses.

pub use rsentry::__private::{EXIT_RUNTIME_ERROR, EXIT_USAGE};
pub use rsentry::Error as RunscError;

// `RunscError::Runtime` exits with runc's status for a failed lifecycle command.
const _: () = assert!(crate::oci::EXIT_OCI_ERROR == 1);
