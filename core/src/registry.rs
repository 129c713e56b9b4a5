//! The registry of a loop's pending tasks: a slab indexed by [`TaskId`].
//!
//! It is what lets a `Send + Sync` waker name a `!Send` task: the waker
//! carries only the id; the loop looks the task up here on its own thread.
//! Ids carry a generation, so a stale wake-up for a finished task whose slot
//! was reused finds nothing instead of waking a stranger.

use alloc::vec::Vec;

use crate::task::AnyTask;

/// Identifies a task within its loop: slot index and generation.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct TaskId(u64);

impl TaskId {
    fn new(index: u32, generation: u32) -> TaskId {
        TaskId(((generation as u64) << 32) | index as u64)
    }
    fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// The pending tasks of a loop.
#[derive(Default)]
pub(crate) struct Registry {
    slots: Vec<(u32, Option<AnyTask>)>,
    free: Vec<u32>,
    len: usize,
}

impl Registry {
    pub(crate) fn reserve(&mut self) -> TaskId {
        match self.free.pop() {
            Some(i) => TaskId::new(i, self.slots[i as usize].0),
            None => {
                self.slots.push((0, None));
                TaskId::new((self.slots.len() - 1) as u32, 0)
            }
        }
    }
    pub(crate) fn fill(&mut self, id: TaskId, task: AnyTask) {
        self.slots[id.index()].1 = Some(task);
        self.len += 1;
    }
    pub(crate) fn get(&self, id: TaskId) -> Option<&AnyTask> {
        match self.slots.get(id.index()) {
            Some((generation, Some(t))) if *generation == id.generation() => Some(t),
            _ => None,
        }
    }
    pub(crate) fn remove(&mut self, id: TaskId) -> Option<AnyTask> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.0 != id.generation() || slot.1.is_none() {
            return None;
        }
        slot.0 = slot.0.wrapping_add(1);
        self.free.push(id.index() as u32);
        self.len -= 1;
        slot.1.take()
    }
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    pub(crate) fn all(&self) -> Vec<AnyTask> {
        self.slots.iter().filter_map(|(_, t)| t.clone()).collect()
    }
    pub(crate) fn take_all(&mut self) -> Vec<AnyTask> {
        let mut out = Vec::with_capacity(self.len);
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(t) = slot.1.take() {
                slot.0 = slot.0.wrapping_add(1);
                self.free.push(i as u32);
                out.push(t);
            }
        }
        self.len = 0;
        out
    }
}
