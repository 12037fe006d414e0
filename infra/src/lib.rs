//! Infrastructure.
