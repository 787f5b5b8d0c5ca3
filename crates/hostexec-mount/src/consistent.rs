//! Re-reading a file until two reads agree: for mount tables on kernels before 5.8, whose
//! reads could tear under churn (fixed by kernel commit 9f6c61f96f2d, "proc/mounts: add
//! cursor"; kubernetes/kubernetes#103754). Go's `k8s.io/utils/io.ConsistentRead`.
//!
//! Kept apart from [`mountinfo`](crate::mountinfo), which is pure parsing: this runs the
//! reads it is given.

/// Why [`consistent_read`] gave up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsistentReadError<E> {
    /// A read failed.
    #[error(transparent)]
    Read(E),
    /// No two consecutive reads agreed.
    #[error("could not get consistent content after {attempts} attempts")]
    Inconsistent {
        /// The number of re-reads made.
        attempts: usize,
    },
}

/// Reads with `read` until two consecutive reads are byte-identical, re-reading at most
/// `attempts` times (at most `attempts + 1` reads, Go's `ConsistentRead`); `attempts == 0`
/// is a single read. Kernels before 5.8 could give torn reads of mount tables under churn
/// (fixed by kernel commit 9f6c61f96f2d, "proc/mounts: add cursor"; kubernetes/kubernetes#103754).
pub async fn consistent_read<F, Fut, E>(
    attempts: usize,
    mut read: F,
) -> Result<Vec<u8>, ConsistentReadError<E>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, E>>,
{
    let mut prev = read().await.map_err(ConsistentReadError::Read)?;
    if attempts == 0 {
        return Ok(prev);
    }
    for _ in 0..attempts {
        let next = read().await.map_err(ConsistentReadError::Read)?;
        if next == prev {
            return Ok(next);
        }
        prev = next;
    }
    Err(ConsistentReadError::Inconsistent { attempts })
}
