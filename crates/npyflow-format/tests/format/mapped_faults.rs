//! A file truncated while npyflow has it memory-mapped, read as a tensor: reads past the
//! new end are errors naming the file, never a SIGBUS that kills the process; reads before
//! it still work; and a SIGBUS that is not about npyflow's maps still gets the default
//! action. (The dataset layer's half is npyflow's tests/it/faults.rs.)
#![cfg(target_os = "linux")]

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use npyflow_format::npy::{is_mapped, read_npy};
use npyflow_format::{DType, Tensor};

#[path = "../support/truncated_rows.rs"]
mod truncated_rows;
use truncated_rows::{
    assert_names_truncation, assert_row, set_len, truncate, write_rows, KEPT, ROWS,
};

#[test]
fn a_tensor_read_directly_checks_its_windows() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_rows(dir.path(), "tensor.npy");
    let t = read_npy(&path).unwrap();
    assert!(is_mapped(&t));
    assert!(t.check_intact().is_ok() && t.verify_intact().is_ok());
    truncate(&path);
    // Before any lost page is touched, only the file system knows.
    assert_names_truncation(&t.verify_intact().unwrap_err(), &path);
    assert!(t.slice_rows(0..KEPT).unwrap().verify_intact().is_ok());
    assert_names_truncation(&t.row(KEPT).unwrap_err(), &path);
    assert_names_truncation(&t.slice_rows(KEPT - 1..KEPT + 1).unwrap_err(), &path);
    assert_names_truncation(&t.cast(DType::Float32).unwrap_err(), &path);
    assert_names_truncation(&Tensor::stack(std::slice::from_ref(&t)).unwrap_err(), &path);
    assert_names_truncation(&t.check_intact().unwrap_err(), &path);
    assert_row(&t.row(KEPT - 1).unwrap(), KEPT - 1);
}

/// Maps a file as npyflow does not (plain memmap2), truncates it and reads its lost last
/// page: the process must die of SIGBUS, as it always did.
fn read_a_lost_page_of_a_foreign_map(dir: &Path) {
    let other = write_rows(dir, "foreign.npy");
    let file = std::fs::File::open(&other).unwrap();
    // SAFETY: the map is read-only; this test truncates its file on purpose and expects
    // the process to die of SIGBUS when reading it.
    let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
    set_len(&other, 100);
    let last = std::hint::black_box(map[map.len() - 1]);
    println!("read {last} from a lost page");
}

/// The body of the child processes of [`a_sigbus_not_about_npyflows_maps_still_kills`]:
/// nothing unless `NPYFLOW_SIGBUS_CHILD` names what to do. `...-default` children take
/// away the handler Rust's runtime installs (for stack overflows; it gives a SIGBUS that is
/// not one back to the default action) before npyflow installs its own, so that npyflow's
/// chains to the default action directly.
#[test]
fn sigbus_child() {
    let Ok(what) = std::env::var("NPYFLOW_SIGBUS_CHILD") else {
        return;
    };
    let what = match what.strip_suffix("-default") {
        Some(what) => {
            // SAFETY: resets the SIGBUS action before any thread of this test uses it.
            unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
            what.to_string()
        }
        None => what,
    };
    let dir = tempfile::tempdir().unwrap();
    // npyflow's handler is installed with its first map.
    let path = write_rows(dir.path(), "guarded.npy");
    let guarded = read_npy(&path).unwrap();
    match what.as_str() {
        "guarded" => {
            truncate(&path);
            assert!(guarded.row(ROWS - 1).is_err());
            println!("survived");
        }
        "foreign" => {
            // A map npyflow did not make: truncating its file and reading must crash as it
            // always did.
            read_a_lost_page_of_a_foreign_map(dir.path());
        }
        "cycle" => {
            // A handler installed after npyflow's that chains to it, and npyflow's put back
            // in front of it (at its next map): each calls the other for a foreign fault.
            // SAFETY: `chaining` has the SA_SIGINFO signature; all-zero bytes are a valid
            // sigaction.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = chaining as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO;
                let mut old: libc::sigaction = std::mem::zeroed();
                libc::sigaction(libc::SIGBUS, &action, &mut old);
                CHAINED_TO.store(old.sa_sigaction, std::sync::atomic::Ordering::SeqCst);
            }
            let _again = read_npy(&path).unwrap();
            read_a_lost_page_of_a_foreign_map(dir.path());
        }
        "sent" => {
            // SAFETY: raise has no preconditions; the signal is meant to kill the process.
            unsafe { libc::raise(libc::SIGBUS) };
            println!("still alive after a SIGBUS");
        }
        "sent-twice" => {
            // Under Rust's own handler, as without npyflow: the first SIGBUS sent is not a
            // stack overflow, so the handler puts back the default action, which the second
            // gets.
            // SAFETY: as above.
            unsafe { libc::raise(libc::SIGBUS) };
            println!("survived the first");
            // SAFETY: as above.
            unsafe { libc::raise(libc::SIGBUS) };
            println!("still alive after two");
        }
        other => panic!("unknown child {other}"),
    }
}

/// The handler of the "cycle" child's third party: it calls the one it displaced.
static CHAINED_TO: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn chaining(signal: i32, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let previous = CHAINED_TO.load(std::sync::atomic::Ordering::SeqCst);
    if previous > 1 {
        // SAFETY: `previous` is the SA_SIGINFO handler this one displaced (npyflow's).
        unsafe {
            let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(previous);
            f(signal, info, context);
        }
    }
}

fn run_child(what: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mapped_faults::sigbus_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NPYFLOW_SIGBUS_CHILD", what)
        .output()
        .unwrap()
}

#[test]
fn a_sigbus_not_about_npyflows_maps_still_kills() {
    let guarded = run_child("guarded");
    assert!(
        guarded.status.success(),
        "{guarded:?}: the guarded truncation should be survived"
    );
    assert!(String::from_utf8_lossy(&guarded.stdout).contains("survived"));
    for what in [
        "foreign",
        "foreign-default",
        "sent-default",
        "sent-twice",
        "cycle",
    ] {
        let out = run_child(what);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGBUS),
            "{what}: {:?}\n{stdout}",
            out.status,
        );
        assert!(!stdout.contains("alive") && !stdout.contains("from a lost page"));
        assert_eq!(stdout.contains("survived the first"), what == "sent-twice");
    }
}
