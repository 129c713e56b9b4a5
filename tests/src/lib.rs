//! Cross-host integration tests live in `tests/`.
