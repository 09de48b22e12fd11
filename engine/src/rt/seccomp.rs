//! A seccomp filter that denies `io_uring_setup` with `EPERM`, exactly as Docker's default
//! profile does. It exists so tests (and operators checking a deployment) can prove that
//! `driver = "auto"` falls back to epoll and `driver = "io_uring"` fails fast, on a host where
//! io_uring itself works.
//!
//! The filter applies to every thread of the process and cannot be removed: call it only in a
//! process made for the purpose (a child test process).

use std::io;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// Installs a process-wide seccomp filter that makes `io_uring_setup` fail with `EPERM`.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub fn deny_io_uring_setup() -> io::Result<()> {
    // Offsets in `struct seccomp_data`: nr at 0, arch at 4.
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: jeq,
        jt,
        jf,
        k,
    };
    let filter = [
        stmt(ld, ARCH),
        // Another architecture's syscall numbers mean something else: allow.
        jump(AUDIT_ARCH, 0, 3),
        stmt(ld, NR),
        jump(libc::SYS_io_uring_setup as u32, 0, 1),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integer arguments and touches no
    // memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `prog` points at `filter`, a valid array of `prog.len` BPF instructions that
    // outlives the call; the kernel copies the program before returning.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Installs a process-wide seccomp filter that makes `io_uring_setup` fail with `EPERM`
/// (unsupported on this platform).
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub fn deny_io_uring_setup() -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}
