use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use roadwarden_types::CameraId;

use crate::Frame;

/// What a camera does when the queue to inference is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Live cameras: drop the oldest queued frame, counted against its camera.
    DropOldest,
    /// Files replayed as fast as possible: wait for room (back-pressure into the pipeline), drop nothing.
    Block,
}

/// The bounded queue between cameras and inference. Several cameras may share one.
pub struct FrameQueue {
    capacity: usize,
    inner: Mutex<Inner>,
    ready: Condvar,
    room: Condvar,
}

struct Inner {
    frames: VecDeque<Frame>,
    drops: HashMap<CameraId, u64>,
}

impl FrameQueue {
    pub fn new(capacity: usize) -> FrameQueue {
        FrameQueue {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                frames: VecDeque::new(),
                drops: HashMap::new(),
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a frame, dropping the oldest when full; returns whether one was dropped.
    pub fn push(&self, frame: Frame) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let mut dropped = false;
        while inner.frames.len() >= self.capacity {
            if let Some(old) = inner.frames.pop_front() {
                *inner.drops.entry(old.camera().clone()).or_default() += 1;
                dropped = true;
            }
        }
        inner.frames.push_back(frame);
        drop(inner);
        self.ready.notify_one();
        dropped
    }

    /// Waits for room, then adds the frame. Gives the frame up (returns false) once `cancel` is set;
    /// calls `waiting` every 50 ms while it waits.
    pub(crate) fn push_blocking(
        &self,
        frame: Frame,
        cancel: &AtomicBool,
        waiting: &dyn Fn(),
    ) -> bool {
        let mut inner = self.inner.lock().unwrap();
        while inner.frames.len() >= self.capacity {
            if cancel.load(Ordering::Relaxed) {
                return false;
            }
            waiting();
            inner = self
                .room
                .wait_timeout(inner, Duration::from_millis(50))
                .unwrap()
                .0;
        }
        inner.frames.push_back(frame);
        drop(inner);
        self.ready.notify_one();
        true
    }

    /// The oldest frame, waiting up to `timeout` for one.
    pub fn pop_timeout(&self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.lock().unwrap();
        loop {
            if let Some(f) = inner.frames.pop_front() {
                drop(inner);
                self.room.notify_one();
                return Some(f);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            inner = self.ready.wait_timeout(inner, deadline - now).unwrap().0;
        }
    }

    pub fn try_pop(&self) -> Option<Frame> {
        self.pop_timeout(Duration::ZERO)
    }

    /// Frames of `camera` dropped because the queue was full.
    pub fn drops(&self, camera: &CameraId) -> u64 {
        self.inner
            .lock()
            .unwrap()
            .drops
            .get(camera)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_drops(&self) -> u64 {
        self.inner.lock().unwrap().drops.values().sum()
    }
}
