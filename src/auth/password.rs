//! Argon2id password hashing, always on threads of careq's own: one per slot of the sign-in gate,
//! each keeping its Argon2 memory (about 19 MiB) from one hash to the next, and one more for
//! accounts being created (by an admin, the CLI or the first start). Freed and re-allocated on
//! whichever blocking-pool thread happened to run it, that memory used to stay with the
//! allocator's per-thread arenas, and RSS grew to several hundred MiB.
use argon2::password_hash::{self, rand_core::OsRng, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, LazyLock, Mutex};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, FieldError};

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

/// Checks the length rule; the pointer names where the password was sent.
pub fn validate(password: &str, pointer: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&n) {
        return Err(ApiError::invalid(vec![FieldError::new(
            pointer,
            format!("must be {MIN_LENGTH} to {MAX_LENGTH} characters"),
        )]));
    }
    Ok(())
}

/// An Argon2 memory area kept by one hashing thread; it grows to the largest cost it has met
/// (careq's own hashes all use the default, 19 MiB) and is never given back.
#[derive(Default)]
struct Memory(Vec<Block>);

impl Memory {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let n = params.block_count();
        if self.0.len() < n {
            self.0.resize(n, Block::default());
        }
        &mut self.0[..n]
    }
}

/// A new PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for `password`, with a random salt.
fn hash_in(memory: &mut Memory, password: &str) -> Result<String, password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let blocks = memory.blocks(&params);
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, blocks)?)
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into()?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string())
}

/// Salt for the stand-in hash that unknown users are checked against.
const STAND_IN_SALT: &[u8] = b"careq: no such user";

/// Whether `password` matches `stored`. With no stored hash (unknown user) the same work is
/// done with the default cost on a fixed salt and the answer is no, so unknown users and wrong
/// passwords take the same time.
fn verify_in(memory: &mut Memory, password: &str, stored: Option<&str>) -> bool {
    let Some(stored) = stored else {
        let params = Params::default();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let blocks = memory.blocks(&params);
        let _ = argon.hash_password_into_with_memory(
            password.as_bytes(),
            STAND_IN_SALT,
            &mut out,
            blocks,
        );
        return false;
    };
    // A hash careq cannot read matches nothing.
    matches(memory, password, stored).unwrap_or(false)
}

/// Computes `password`'s hash with the algorithm, version, costs and salt `stored` names.
fn matches(
    memory: &mut Memory,
    password: &str,
    stored: &str,
) -> Result<bool, password_hash::Error> {
    let hash = PasswordHash::new(stored)?;
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(hash.algorithm)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&hash)?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let blocks = memory.blocks(&params);
    let computed = Output::init_with(expected.len(), |out| {
        Ok(argon.hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, blocks)?)
    })?;
    // `Output` compares in constant time.
    Ok(computed == expected)
}

enum Work {
    Hash(String),
    Verify {
        password: String,
        stored: Option<String>,
    },
}

enum Done {
    Hashed(Result<String, password_hash::Error>),
    Verified(bool),
}

struct Job {
    work: Work,
    /// Whatever must be held until the hash is done (the gate's slot and the address's place):
    /// dropped by the hashing thread once it has finished, whether or not anyone still waits
    /// for the answer.
    hold: Option<Pass>,
    answer: oneshot::Sender<Done>,
}

/// A fixed set of threads taking jobs from one queue, each with its own Argon2 memory, kept from
/// one job to the next when `keep` (else given back after each job). When the pool is dropped
/// the queue closes and the threads end.
struct HashPool {
    jobs: mpsc::Sender<Job>,
}

impl HashPool {
    fn start(threads: usize, keep: bool, name: impl Fn(usize) -> String) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(name(i))
                .spawn(move || Self::work(&queue, keep))
                .expect("starting a password-hashing thread");
        }
        Self { jobs }
    }

    fn work(queue: &Mutex<mpsc::Receiver<Job>>, keep: bool) {
        // Allocated at the first job, so a server nobody signs in to holds none of it.
        let mut memory = Memory::default();
        loop {
            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
            let Ok(job) = next else {
                return;
            };
            let done = match job.work {
                Work::Hash(password) => Done::Hashed(hash_in(&mut memory, &password)),
                Work::Verify { password, stored } => {
                    Done::Verified(verify_in(&mut memory, &password, stored.as_deref()))
                }
            };
            if !keep {
                memory = Memory::default();
            }
            drop(job.hold);
            // The asker may have gone (its client hung up): the work was still done, in order.
            let _ = job.answer.send(done);
        }
    }

    async fn run(&self, work: Work, hold: Option<Pass>) -> Result<Done, ApiError> {
        let (answer, done) = oneshot::channel();
        self.jobs
            .send(Job { work, hold, answer })
            .map_err(|_| ApiError::internal("the password-hashing threads have stopped"))?;
        done.await
            .map_err(|_| ApiError::internal("a password-hashing thread stopped mid-job"))
    }

    async fn hash(&self, password: String, hold: Option<Pass>) -> Result<String, ApiError> {
        match self.run(Work::Hash(password), hold).await? {
            Done::Hashed(h) => h.map_err(ApiError::internal),
            Done::Verified(_) => Err(ApiError::internal("a hash was asked for, not a check")),
        }
    }

    async fn verify(
        &self,
        password: String,
        stored: Option<String>,
        hold: Option<Pass>,
    ) -> Result<bool, ApiError> {
        match self.run(Work::Verify { password, stored }, hold).await? {
            Done::Verified(ok) => Ok(ok),
            Done::Hashed(_) => Err(ApiError::internal("a check was asked for, not a hash")),
        }
    }
}

/// Hashes for new accounts (an admin's `POST /v1/users`, the CLI, the first start): rare, so one
/// thread of their own, started when first needed, outside the sign-in gate, which gives its
/// memory back after each (usually the first start's admin is the only one).
static NEW_ACCOUNTS: LazyLock<HashPool> =
    LazyLock::new(|| HashPool::start(1, false, |_| "careq-hash-new".into()));

/// A PHC string for a new account's password.
pub async fn hash(password: String) -> Result<String, ApiError> {
    NEW_ACCOUNTS.hash(password, None).await
}

/// Places in the gate (slots plus waiting places) one client address may hold by default, per
/// slot.
const DEFAULT_PER_ADDRESS_PER_SLOT: usize = 2;
/// Slots when none are configured: one per core, but no more than this, so the memory the
/// hashing threads keep stays small on big machines too.
const DEFAULT_MAX_SLOTS: usize = 4;

/// Bounds the Argon2 work a server does at once, and each client address's part of it. At most
/// `slots` hashes run at a time (one per hashing thread), at most four times as many wait for a
/// slot, and anyone beyond that gets 503 with `Retry-After`. One address may hold at most
/// `per_address` of those places, running or waiting: its next sign-in gets 429 with
/// `Retry-After` before anything is hashed, so a flood from one address leaves room for
/// everybody else.
pub struct HashGate {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    per_address: usize,
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    pool: HashPool,
}

/// Decrements the waiting count however the wait ends (a client that hangs up included).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One place of one address in the gate, given back when dropped.
struct AddressPlace {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// What a hash holds in the gate until it is done: a slot, and its address's place.
/// The place is given back before the slot, so whoever the slot goes to next finds the count
/// already down.
struct Pass {
    _place: AddressPlace,
    _slot: OwnedSemaphorePermit,
}

/// The address whose share a request counts against: an IPv4 address (also when it arrives
/// IPv4-mapped), or an IPv6 address's /64 network, which one subscriber usually holds whole.
fn share_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !(u64::MAX as u128)).into()),
        },
    }
}

impl HashGate {
    /// `slots` of `None` means one per core, at most four; `per_address` of `None` means two per
    /// slot. An address never gets every place: at least one stays for the others.
    pub fn new(slots: Option<usize>, per_address: Option<usize>) -> Self {
        let slots = slots
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map_or(2, |n| n.get())
                    .min(DEFAULT_MAX_SLOTS)
            })
            .max(1);
        let max_waiting = slots * 4;
        let per_address = per_address
            .unwrap_or(slots * DEFAULT_PER_ADDRESS_PER_SLOT)
            .clamp(1, slots + max_waiting - 1);
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            per_address,
            held: Arc::default(),
            pool: HashPool::start(slots, true, |i| format!("careq-hash-{i}")),
        }
    }

    /// Takes one of `ip`'s places, or refuses with 429 when it holds all it may.
    fn place_for(&self, ip: IpAddr) -> Result<AddressPlace, ApiError> {
        let key = share_key(ip);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(key).or_insert(0);
        if *n >= self.per_address {
            return Err(ApiError::TooManyRequests {
                detail: "too many sign-ins from this address are being checked at once; try \
                         again shortly"
                    .into(),
                retry_after: 1,
                rate: None,
            });
        }
        *n += 1;
        Ok(AddressPlace {
            held: self.held.clone(),
            key,
        })
    }

    async fn enter(&self, ip: IpAddr) -> Result<Pass, ApiError> {
        // Dropped with the error or the abandoned wait, it gives the address's place back.
        let place = self.place_for(ip)?;
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(Pass {
                _place: place,
                _slot: slot,
            });
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::ServiceUnavailable {
                detail: "too many sign-ins are being checked at once; try again shortly".into(),
                retry_after: 1,
            });
        }
        let _waiting = Waiting(&self.waiting);
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        Ok(Pass {
            _place: place,
            _slot: slot,
        })
    }

    /// Whether `password` matches `stored` (`None`: an unknown user, never a match, checked
    /// against a stand-in so that it takes the same time), for a request from `ip`. The slot
    /// and the address's place go to the hashing thread, so they are held until the hash is
    /// done even when the request that asked is dropped meanwhile.
    pub async fn verify(
        &self,
        ip: IpAddr,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, ApiError> {
        let pass = self.enter(ip).await?;
        self.pool.verify(password, stored, Some(pass)).await
    }

    /// A PHC string for `password`, inside the gate, for a request from `ip`.
    pub async fn hash(&self, ip: IpAddr, password: String) -> Result<String, ApiError> {
        let pass = self.enter(ip).await?;
        self.pool.hash(password, Some(pass)).await
    }

    /// Places in the gate held now by `ip`'s share (for tests and metrics).
    pub fn held_by(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&share_key(ip)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_do() {
        let gate = HashGate::new(Some(1), None);
        let me = ip("10.0.0.1");
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(gate
            .verify(me, "correct horse battery".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!gate
            .verify(me, "wrong horse battery".into(), Some(h))
            .await
            .unwrap());
        assert!(!gate
            .verify(me, "correct horse battery".into(), None)
            .await
            .unwrap());
        assert!(!gate
            .verify(me, "x".into(), Some("not a hash".into()))
            .await
            .unwrap());
        assert_eq!(
            validate("short", "/password").unwrap_err().status().code,
            422
        );
        // Nothing is left held once the answers are in.
        assert_eq!(gate.held_by(me), 0);
    }

    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crates_own_in_both_directions() {
        let gate = HashGate::new(Some(1), None);
        let me = ip("10.0.0.1");
        let ours = gate.hash(me, "a password of ours".into()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"a password of ours", &parsed)
            .is_ok());
        // A hash with other costs (as an older careq or another tool might have stored) is
        // checked with the costs it names.
        let params = Params::new(8 * 1024, 3, 1, Some(24)).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"a password of theirs", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(gate
            .verify(me, "a password of theirs".into(), Some(theirs.clone()))
            .await
            .unwrap());
        assert!(!gate
            .verify(me, "a password of ours".into(), Some(theirs))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn the_gate_refuses_what_it_cannot_queue() {
        // One slot, four waiting places; each address may hold two places.
        let gate = HashGate::new(Some(1), None);
        let a = ip("10.0.0.1");
        let held = gate.enter(a).await.unwrap();
        let mut waiters = Vec::new();
        for n in 2..6 {
            let g = &gate;
            waiters.push(Box::pin(async move {
                g.enter(format!("10.0.0.{n}").parse().unwrap())
                    .await
                    .map(drop)
            }));
        }
        // Poll each waiter once so it registers as waiting.
        for w in waiters.iter_mut() {
            assert!(futures_util::FutureExt::now_or_never(w.as_mut()).is_none());
        }
        let err = gate.enter(ip("10.0.0.9")).await.err().unwrap();
        assert_eq!(err.status().code, 503);
        // A refused request keeps no place of its address.
        assert_eq!(gate.held_by(ip("10.0.0.9")), 0);
        // Waiters that give up free their place in the queue, and their address's place.
        drop(waiters);
        assert_eq!(gate.held_by(ip("10.0.0.2")), 0);
        drop(held);
        assert!(gate.enter(a).await.is_ok());
    }

    #[tokio::test]
    async fn one_address_holds_at_most_its_share_and_the_rest_stay_open() {
        let gate = HashGate::new(Some(1), Some(2));
        let a = ip("10.0.0.1");
        let running = gate.enter(a).await.unwrap();
        let mut waiting = Box::pin(gate.enter(a));
        assert!(futures_util::FutureExt::now_or_never(waiting.as_mut()).is_none());
        assert_eq!(gate.held_by(a), 2);
        // The third from the same address is refused with 429 at once, before any hashing.
        match gate.enter(a).await.err().unwrap() {
            ApiError::TooManyRequests { retry_after, .. } => assert_eq!(retry_after, 1),
            other => panic!("{other:?}"),
        }
        // Another address still gets in line.
        let mut other = Box::pin(gate.enter(ip("10.0.0.2")));
        assert!(futures_util::FutureExt::now_or_never(other.as_mut()).is_none());
        drop(running);
        // First come, first served: the address already waiting goes first.
        let second = waiting.await.unwrap();
        drop(second);
        other.await.unwrap();
        assert_eq!(gate.held_by(a), 0);
    }

    #[test]
    fn an_ipv6_subscriber_shares_one_place_count_per_64() {
        assert_eq!(
            share_key(ip("2001:db8:1:2:aaaa::1")),
            share_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            share_key(ip("2001:db8:1:2::1")),
            share_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(share_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        let per_slot = HashGate::new(Some(3), None);
        assert_eq!(per_slot.per_address, 6);
        // Never every place.
        let greedy = HashGate::new(Some(1), Some(100));
        assert_eq!(greedy.per_address, 4);
    }

    #[tokio::test]
    async fn an_abandoned_check_gives_its_places_back_once_its_hash_is_done() {
        let gate = HashGate::new(Some(1), None);
        let a = ip("10.0.0.1");
        let asked = gate.verify(a, "anything at all".into(), None);
        // Poll until the job is on its way to the hashing thread, then walk away.
        let mut asked = Box::pin(asked);
        let _ = futures_util::FutureExt::now_or_never(asked.as_mut());
        drop(asked);
        // The slot comes back only when the thread has finished; then it is free again.
        let next = gate.enter(ip("10.0.0.2")).await.unwrap();
        drop(next);
        assert_eq!(gate.held_by(a), 0);
    }
}
