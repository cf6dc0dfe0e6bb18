//! The `SIGBUS` handler (Linux): it repairs faults in registered maps and chains every
//! other `SIGBUS` to the handler before it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use libc::{c_int, c_void, siginfo_t};

use super::table::TABLE;

/// The handler in place before npyflow's (`SIG_DFL`, `SIG_IGN` or a function).
static PREVIOUS: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
/// Whether npyflow's handler was ever installed.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// The thread (its id) that is calling the previous handler from npyflow's; 0: none.
static CHAINING: AtomicUsize = AtomicUsize::new(0);
static PAGE: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Mutex<()> = Mutex::new(());

pub(super) fn page_size() -> usize {
    PAGE.load(Ordering::Relaxed)
}

fn ours() -> usize {
    on_sigbus as extern "C" fn(c_int, *mut siginfo_t, *mut c_void) as usize
}

/// Installs the handler, or puts it back in front if another one displaced it. False
/// when it cannot be installed (then maps are not guarded).
pub(super) fn ensure_installed() -> bool {
    let _lock = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if PAGE.load(Ordering::Relaxed) == 0 {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let Ok(page) = usize::try_from(page) else {
            return false;
        };
        if !page.is_power_of_two() {
            return false;
        }
        PAGE.store(page, Ordering::Relaxed);
    }
    // SAFETY: all-zero bytes are a valid `sigaction` (no handler, empty mask, no flags).
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `current`.
    if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut current) } != 0 {
        return false;
    }
    if current.sa_sigaction == ours() {
        return true;
    }
    // Displaced (or never installed): what is there now becomes the one chained to.
    PREVIOUS.store(current.sa_sigaction, Ordering::Release);
    // SAFETY: as above.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = ours();
    // On the alternate stack when the thread has one (Rust's threads do), as the
    // handlers chained to expect.
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: as above.
    let mut replaced: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `action` is initialised (its mask emptied below) and `on_sigbus` has the
    // signature SA_SIGINFO asks for.
    unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGBUS, &action, &mut replaced) != 0 {
            return false;
        }
    }
    if replaced.sa_sigaction != current.sa_sigaction && replaced.sa_sigaction != ours() {
        // Someone installed theirs between the two calls.
        PREVIOUS.store(replaced.sa_sigaction, Ordering::Release);
    }
    INSTALLED.store(true, Ordering::Relaxed);
    true
}

/// [`ensure_installed`] once npyflow's handler has been installed.
pub(super) fn restore() {
    if INSTALLED.load(Ordering::Relaxed) {
        ensure_installed();
    }
}

/// The handler. Async-signal-safe: atomics, `stat`, `mmap`, `sigaction`, `sigpending`,
/// `gettid` and `raise` only; no allocation, no lock.
extern "C" fn on_sigbus(signal: c_int, info: *mut siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo (or, when called by hand, null, which
    // `repair` and `chain` check); errno is this thread's, saved and put back so the
    // interrupted code never sees our system calls' errors.
    unsafe {
        let errno = *libc::__errno_location();
        if !repair(info) {
            chain(signal, info, context);
        }
        *libc::__errno_location() = errno;
    }
}

/// Maps zero pages over the lost part of a registered map that `info`'s fault hit.
/// False when the fault is not in one (or cannot be repaired).
///
/// # Safety
/// `info` is null or points to the siginfo of the signal being handled.
unsafe fn repair(info: *mut siginfo_t) -> bool {
    if info.is_null() {
        return false;
    }
    // SAFETY: `info` is valid (the caller's contract).
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // A page the file no longer backs (truncation) or could not read: not a bad
    // alignment, and not a signal sent with kill.
    if code != libc::BUS_ADRERR && code != libc::BUS_OBJERR {
        return false;
    }
    let Some(found) = TABLE.find(addr) else {
        return false;
    };
    let page = page_size();
    let fault = (addr - found.start) & !(page - 1);
    // Without the file's length: the faulting page alone, lost from its start.
    let (mut lost, mut zero_from, mut zero_to) = (fault, fault, fault + page);
    // SAFETY: all-zero bytes are a valid `stat`; stat only writes into it. The path is
    // null or the NUL-terminated string the map's owner keeps while it is registered.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let file = found.file;
    if !file.path.is_null()
        // SAFETY: as above: the path is non-null here, NUL-terminated and kept alive by
        // the registered map's owner; `st` is a valid `stat` to write into.
        && unsafe { libc::stat(file.path.cast_const().cast(), &mut st) } == 0
        && st.st_dev as u64 == file.dev
        && st.st_ino as u64 == file.ino
    {
        let size = usize::try_from(st.st_size).unwrap_or(0);
        if size <= fault {
            // Truncated: everything from the new end on is lost; its whole pages (from
            // the fault's, or below) to the end of the map get zero pages at once.
            lost = size;
            zero_from = size.div_ceil(page) * page;
            zero_to = found.len;
        }
    }
    if !TABLE.still(&found) {
        return false;
    }
    // Marked before the zeros appear, so no reader sees zeros from an intact map.
    TABLE.mark_lost(found.index, lost);
    // SAFETY: the range lies inside a registered map (whole pages, page-aligned), which
    // is ours and live: MAP_FIXED replaces those pages of it and nothing else, and the
    // map's owner unmaps the whole range, these pages included, when it is dropped.
    let p = unsafe {
        libc::mmap(
            (found.start + zero_from) as *mut c_void,
            zero_to - zero_from,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    p != libc::MAP_FAILED
}

/// Hands a signal that is not npyflow's to the handler installed before, or to the
/// default action.
///
/// # Safety
/// Called from `on_sigbus` only, with its arguments.
unsafe fn chain(signal: c_int, info: *mut siginfo_t, context: *mut c_void) {
    // SAFETY: `info` is null or valid.
    let sent = info.is_null() || unsafe { (*info).si_code } <= 0;
    let previous = PREVIOUS.load(Ordering::Acquire);
    if previous == libc::SIG_IGN && sent {
        return;
    }
    // SAFETY: gettid has no preconditions and cannot fail.
    let me = unsafe { libc::syscall(libc::SYS_gettid) } as usize;
    // Back here from the handler this thread is calling: handlers that chain to each
    // other in a cycle (two copies of npyflow in one process, each putting its own in
    // front of the other's) would call each other until the stack overflows.
    let cycle = CHAINING.load(Ordering::Acquire) == me;
    if cycle || previous == libc::SIG_DFL || previous == libc::SIG_IGN || previous == ours() {
        // SAFETY: sigaction and raise are async-signal-safe. A fault comes back when the
        // access runs again, and gets the default action (a synchronous fault cannot be
        // ignored); a sent signal is raised again, and delivered once this handler
        // returns.
        unsafe {
            set_default();
            if sent {
                libc::raise(libc::SIGBUS);
            }
        }
        return;
    }
    let marked = CHAINING
        .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok();
    // SAFETY: `previous` is the handler the system had for SIGBUS: a function that
    // takes (signal) or, with SA_SIGINFO, (signal, info, context); passing all three
    // suits both, as the kernel itself does.
    unsafe {
        let handler: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
            std::mem::transmute(previous);
        handler(signal, info, context);
    }
    if marked {
        CHAINING.store(0, Ordering::Release);
    }
    // A handler that raises the signal again after putting back the one it displaced,
    // which is this one (Python's faulthandler does), would bring it back here, and so
    // on forever: the default action ends that.
    // SAFETY: both only query the signal state.
    if unsafe { pending_sigbus() && installed() == ours() } {
        // SAFETY: async-signal-safe.
        unsafe { set_default() };
    }
}

/// # Safety
/// Async-signal-safe; changes the process's SIGBUS action to the default.
unsafe fn set_default() {
    // SAFETY: all-zero bytes are a valid `sigaction`; SIG_DFL is 0.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

/// # Safety
/// Async-signal-safe.
unsafe fn installed() -> usize {
    // SAFETY: a null new action only reads the current one.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut current);
        current.sa_sigaction
    }
}

/// # Safety
/// Async-signal-safe.
unsafe fn pending_sigbus() -> bool {
    // SAFETY: sigpending fills the set; sigismember reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigpending(&mut set) == 0 && libc::sigismember(&set, libc::SIGBUS) == 1
    }
}

#[cfg(test)]
pub(super) fn is_installed() -> bool {
    // SAFETY: only reads the current action.
    unsafe { installed() == ours() }
}
