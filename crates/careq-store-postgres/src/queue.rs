//! A bounded queue shared by a pool of threads: a full or closed queue refuses a job at once
//! (the caller answers `Busy`), and a closed one still hands out what it holds, so every job
//! queued before `close` runs and is answered.
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    cap: usize,
}

/// What a wait on the queue gave.
pub(crate) enum Popped<T> {
    Job(T),
    Idle,
    Closed,
}

struct State<T> {
    jobs: VecDeque<T>,
    closed: bool,
}

impl<T> Queue<T> {
    pub fn new(cap: usize) -> Queue<T> {
        Queue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            cap: cap.max(1),
        }
    }

    /// Queues `job`, or gives it back when the queue is full or closed.
    pub fn push(&self, job: T) -> Result<(), T> {
        let mut s = self.lock();
        if s.closed || s.jobs.len() >= self.cap {
            return Err(job);
        }
        s.jobs.push_back(job);
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, waiting for one; `Idle` after `idle` without one (the caller may let go of
    /// its connection meanwhile); `Closed` once the queue is closed and empty.
    pub fn pop(&self, idle: Duration) -> Popped<T> {
        let mut s = self.lock();
        loop {
            if let Some(job) = s.jobs.pop_front() {
                return Popped::Job(job);
            }
            if s.closed {
                return Popped::Closed;
            }
            let (next, waited) = self
                .ready
                .wait_timeout(s, idle)
                .unwrap_or_else(|p| p.into_inner());
            s = next;
            if waited.timed_out() && s.jobs.is_empty() && !s.closed {
                return Popped::Idle;
            }
        }
    }

    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// A job's panic never poisons the queue for good: its state is a plain list.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_without_jobs_ends_idle_and_a_job_ends_it_at_once() {
        let q = std::sync::Arc::new(Queue::new(4));
        assert!(matches!(q.pop(Duration::from_millis(20)), Popped::Idle));
        let pusher = {
            let q = q.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                q.push(7).unwrap();
            })
        };
        let got = loop {
            match q.pop(Duration::from_secs(5)) {
                Popped::Job(j) => break j,
                Popped::Idle => continue,
                Popped::Closed => panic!("closed"),
            }
        };
        assert_eq!(got, 7);
        pusher.join().unwrap();
    }

    #[test]
    fn a_full_queue_gives_the_job_back_and_a_closed_one_still_drains() {
        let q = Queue::new(2);
        assert!(q.push(1).is_ok());
        assert!(q.push(2).is_ok());
        assert_eq!(q.push(3), Err(3));
        q.close();
        assert_eq!(q.push(4), Err(4));
        let next = || match q.pop(Duration::from_millis(10)) {
            Popped::Job(j) => Some(j),
            Popped::Idle => panic!("idle with jobs queued"),
            Popped::Closed => None,
        };
        assert_eq!(next(), Some(1));
        assert_eq!(next(), Some(2));
        assert_eq!(next(), None);
    }
}
