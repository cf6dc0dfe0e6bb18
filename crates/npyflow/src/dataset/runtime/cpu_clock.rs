//! The CPU time of the calling thread, for the tuner: the time a worker was running, not the
//! time it was descheduled. On a machine shared with other work, a clock on the wall counts
//! the time a worker waits for a core as time it used (measured on 2 busy cores: the tuner
//! then saw the CPU budget spent by one thread of a slow stage and gave it no second one).

/// This thread's CPU time in ns, or `None` where the platform cannot say.
pub(crate) fn thread_cpu_ns() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec that lives across the call, and
        // CLOCK_THREAD_CPUTIME_ID is a clock every Unix this builds on knows; the call reads
        // nothing else and keeps no pointer.
        let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if r == 0 {
            let secs = u64::try_from(ts.tv_sec).ok()?;
            let nanos = u64::try_from(ts.tv_nsec).ok()?;
            return Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn the_clock_runs_while_the_thread_works_and_not_while_it_sleeps() {
        let Some(t0) = thread_cpu_ns() else { return };
        std::thread::sleep(Duration::from_millis(30));
        let t1 = thread_cpu_ns().unwrap();
        assert!(t1 - t0 < 20_000_000, "asleep, {} ns of CPU", t1 - t0);
        let until = Instant::now() + Duration::from_millis(30);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let t2 = thread_cpu_ns().unwrap();
        assert!(t2 > t1, "busy: the clock moved");
    }
}
