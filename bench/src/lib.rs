//! Shared pieces of the benchmark binaries: the servers under test and
//! their TLS configuration.

pub mod servers;
pub mod tls;

/// Raises the soft limit on open files to `need` (or the hard limit), so
/// that 10,000 connections fit without a `ulimit` in the calling shell.
pub fn raise_fd_limit(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < need {
            lim.rlim_cur = need.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
