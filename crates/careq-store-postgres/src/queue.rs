//! A bounded queue shared by a pool of threads: a full or closed queue refuses a job at once
//! (the caller answers `Busy`), and a closed one still hands out what it holds, so every job
//! queued before `close` runs and is answered.
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    cap: usize,
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

    /// The next job, waiting for one; `None` once the queue is closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut s = self.lock();
        loop {
            if let Some(job) = s.jobs.pop_front() {
                return Some(job);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(|p| p.into_inner());
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
    fn a_full_queue_gives_the_job_back_and_a_closed_one_still_drains() {
        let q = Queue::new(2);
        assert!(q.push(1).is_ok());
        assert!(q.push(2).is_ok());
        assert_eq!(q.push(3), Err(3));
        q.close();
        assert_eq!(q.push(4), Err(4));
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.pop(), None);
    }
}
