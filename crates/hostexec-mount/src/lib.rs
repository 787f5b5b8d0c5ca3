//! Skeleton: filled in by its own issue. Nothing here works yet.
