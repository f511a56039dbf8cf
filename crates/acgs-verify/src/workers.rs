//! A run's checks spread over worker threads, each with its own solver process and runtime: both the solver and
//! the symbolic compilation take CPU, so `n` workers cut a run's wall time by up to `n`. Workers take the next
//! item as they finish one; results come back in the items' order.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::session::Session;
use crate::solver::SolverConfig;
use crate::{VerifyError, runtime};

/// `work` on every item, on up to `workers` threads; the first error ends the run.
pub(crate) fn for_each<T, R>(
    items: &[T],
    workers: usize,
    config: &SolverConfig,
    work: impl AsyncFn(&mut Session, &T) -> Result<R, VerifyError> + Sync,
) -> Result<Vec<R>, VerifyError>
where
    T: Sync,
    R: Send,
{
    let next = AtomicUsize::new(0);
    let threads = workers.clamp(1, items.len().max(1));
    let work = &work;
    let next = &next;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || -> Result<Vec<(usize, R)>, VerifyError> {
                    runtime()?.block_on(async {
                        let mut session = Session::new(config.clone());
                        let mut done = Vec::new();
                        let mut failed = None;
                        loop {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(item) = items.get(index) else { break };
                            match work(&mut session, item).await {
                                Ok(result) => done.push((index, result)),
                                Err(e) => {
                                    failed = Some(e);
                                    // Let the other workers stop at their next item.
                                    next.store(items.len(), Ordering::Relaxed);
                                    break;
                                }
                            }
                        }
                        session.close().await;
                        match failed {
                            Some(e) => Err(e),
                            None => Ok(done),
                        }
                    })
                })
            })
            .collect();
        let mut all = Vec::with_capacity(items.len());
        let mut first_error = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(results)) => all.extend(results),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(VerifyError::Encoding("a verification worker panicked".into()));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        all.sort_by_key(|(i, _)| *i);
        Ok(all.into_iter().map(|(_, r)| r).collect())
    })
}
