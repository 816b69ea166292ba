//! The in-flight budget: the bytes of requests being received and decoded at once, over all
//! connections of both listeners, headers and bodies alike.
//!
//! The budget is split in two lanes so that small exports are not starved by large ones. The
//! budget's queue is first in, first out: with one lane, a large body waiting at its head made
//! every request behind it wait too, however little it needed, and clients that had begun large
//! bodies and then stalled could make a three-byte export wait two seconds and fail. The small
//! lane (an eighth of the budget, when the budget has room for it beside the largest request) is
//! for request headers and bodies of at most a sixteenth of that lane; they may also take room
//! in the main lane, but a large body never takes room in the small lane. Nothing here waits
//! while holding a charge of the same request (a body that grows as it is read or inflated grows
//! without waiting), so two requests cannot wait on each other.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The bytes of requests in flight, in two lanes.
#[derive(Debug)]
pub(crate) struct Budget {
    total: usize,
    main: Arc<Semaphore>,
    small: Arc<Semaphore>,
    small_size: usize,
    /// The largest charge that may take room in the small lane.
    small_max: usize,
}

/// Bytes held in the budget; given back when dropped.
#[derive(Debug, Default)]
pub(crate) struct Charge {
    main: Option<OwnedSemaphorePermit>,
    small: Option<OwnedSemaphorePermit>,
}

impl Budget {
    /// A budget of `total` bytes whose main lane holds at least `largest` (the largest single
    /// charge it must be able to take; at most `total`).
    pub(crate) fn new(total: usize, largest: usize) -> Self {
        let small = (total / 8).min(total.saturating_sub(largest));
        Self {
            total,
            main: Arc::new(Semaphore::new(total - small)),
            small: Arc::new(Semaphore::new(small)),
            small_size: small,
            small_max: small / 16,
        }
    }

    /// The whole budget, both lanes.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// The largest charge one request can hold: the main lane.
    pub(crate) fn largest(&self) -> usize {
        self.total - self.small_size
    }

    /// Bytes held now.
    pub(crate) fn in_use(&self) -> usize {
        self.total - self.main.available_permits() - self.small.available_permits()
    }

    /// Takes `bytes` if there is room now, in the small lane first when they are few enough.
    pub(crate) fn try_charge(&self, bytes: usize) -> Option<Charge> {
        let permits = u32::try_from(bytes).ok()?;
        if bytes <= self.small_max
            && let Ok(permit) = Arc::clone(&self.small).try_acquire_many_owned(permits)
        {
            return Some(Charge {
                small: Some(permit),
                main: None,
            });
        }
        let permit = Arc::clone(&self.main)
            .try_acquire_many_owned(permits)
            .ok()?;
        Some(Charge {
            main: Some(permit),
            small: None,
        })
    }

    /// Takes `bytes` (at most [`largest`](Self::largest)), waiting for room until `until`:
    /// a small charge in whichever lane has room first, a large one in the main lane, behind
    /// the large ones that came before it.
    pub(crate) async fn charge(&self, bytes: usize, until: Instant) -> Option<Charge> {
        let bytes = bytes.min(self.largest());
        if let Some(charge) = self.try_charge(bytes) {
            return Some(charge);
        }
        let permits = u32::try_from(bytes).ok()?;
        let main = Arc::clone(&self.main).acquire_many_owned(permits);
        let acquired = if bytes <= self.small_max {
            let small = Arc::clone(&self.small).acquire_many_owned(permits);
            tokio::time::timeout_at(until, async {
                tokio::select! {
                    permit = small => permit.ok().map(|p| Charge { small: Some(p), main: None }),
                    permit = main => permit.ok().map(|p| Charge { main: Some(p), small: None }),
                }
            })
            .await
        } else {
            tokio::time::timeout_at(until, async {
                main.await.ok().map(|p| Charge {
                    main: Some(p),
                    small: None,
                })
            })
            .await
        };
        acquired.ok().flatten()
    }

    /// Grows `charge` to `bytes` if there is room now; never waits (see the module's doc).
    pub(crate) fn grow(&self, charge: &mut Charge, bytes: usize) -> bool {
        let more = bytes.saturating_sub(charge.bytes());
        if more == 0 {
            return true;
        }
        let Ok(permits) = u32::try_from(more) else {
            return false;
        };
        if bytes <= self.small_max
            && let Ok(permit) = Arc::clone(&self.small).try_acquire_many_owned(permits)
        {
            merge(&mut charge.small, permit);
            return true;
        }
        match Arc::clone(&self.main).try_acquire_many_owned(permits) {
            Ok(permit) => {
                merge(&mut charge.main, permit);
                true
            }
            Err(_) => false,
        }
    }
}

fn merge(slot: &mut Option<OwnedSemaphorePermit>, permit: OwnedSemaphorePermit) {
    match slot {
        Some(held) => held.merge(permit),
        None => *slot = Some(permit),
    }
}

impl Charge {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.main
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
            + self
                .small
                .as_ref()
                .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Gives back what is held beyond `bytes`, from the main lane first.
    pub(crate) fn shrink_to(&mut self, bytes: usize) {
        let mut extra = self.bytes().saturating_sub(bytes);
        for permit in [&mut self.main, &mut self.small].into_iter().flatten() {
            let give = extra.min(permit.num_permits());
            drop(permit.split(give));
            extra -= give;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MIB: usize = 1 << 20;

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(50)
    }

    #[test]
    fn the_small_lane_is_an_eighth_when_the_largest_request_fits_beside_it() {
        let budget = Budget::new(64 * MIB, 17 * MIB);
        assert_eq!(budget.largest(), 56 * MIB);
        // No room for a lane beside the largest request: one lane, as big as the budget.
        let tight = Budget::new(MIB, MIB);
        assert_eq!(tight.largest(), MIB);
        assert!(tight.try_charge(1).is_some());
    }

    #[tokio::test]
    async fn large_bodies_leave_the_small_lane_to_small_ones() {
        let budget = Budget::new(64 * MIB, 4 * MIB);
        let mut held = Vec::new();
        while let Some(charge) = budget.try_charge(4 * MIB) {
            held.push(charge);
        }
        assert_eq!(held.len(), 14, "56 MiB of large bodies");
        assert!(budget.charge(4 * MIB, soon()).await.is_none());
        // A small body is taken at once, and so are many more, up to the small lane.
        let mut small = Vec::new();
        while let Some(charge) = budget.try_charge(512 * 1024) {
            small.push(charge);
        }
        assert_eq!(small.len(), 16);
        assert_eq!(budget.in_use(), 64 * MIB);
        // Once a large body is done, a small one waiting gets the room.
        let waiting = budget.charge(1000, Instant::now() + Duration::from_secs(5));
        drop(held.pop());
        let charge = waiting.await.expect("room");
        assert_eq!(charge.bytes(), 1000);
    }

    #[tokio::test]
    async fn a_small_waiter_is_not_queued_behind_a_large_one() {
        let budget = Budget::new(64 * MIB, 4 * MIB);
        let mut large = budget.try_charge(56 * MIB).expect("the main lane");
        let small: Vec<_> = (0..16)
            .map(|_| budget.try_charge(512 * 1024).expect("the small lane"))
            .collect();
        // A large request waits at the head of the main lane's queue.
        let budget = Arc::new(budget);
        let waiter = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move {
                budget
                    .charge(8 * MIB, Instant::now() + Duration::from_secs(30))
                    .await
                    .map(|c| c.bytes())
            })
        };
        tokio::task::yield_now().await;
        // Room comes back in the small lane: a small request takes it at once.
        drop(small);
        let charge = budget
            .charge(1000, soon())
            .await
            .expect("not behind the large waiter");
        assert_eq!(charge.bytes(), 1000);
        large.shrink_to(40 * MIB);
        assert_eq!(waiter.await.expect("task"), Some(8 * MIB));
    }

    #[test]
    fn a_charge_grows_without_waiting_and_shrinks_back() {
        let budget = Budget::new(64 * MIB, 4 * MIB);
        let mut charge = budget.try_charge(100).expect("room");
        assert!(budget.grow(&mut charge, 4 * MIB));
        assert_eq!(charge.bytes(), 4 * MIB);
        assert!(!budget.grow(&mut charge, 100 * MIB));
        charge.shrink_to(10);
        assert_eq!(charge.bytes(), 10);
        assert_eq!(budget.in_use(), 10);
        drop(charge);
        assert_eq!(budget.in_use(), 0);
    }
}
