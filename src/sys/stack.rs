//! A stack for a process cloned with `CLONE_VM` (it shares the caller's memory, so it cannot
//! run on the caller's stack).

use std::io;

const GUARD: usize = 4096;

pub struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    /// A stack of `len` bytes (a multiple of the page size), its lowest page a guard.
    pub fn new(len: usize) -> io::Result<Stack> {
        // SAFETY: a fresh private anonymous mapping; pages are only made when touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base, len };
        // A guard page at the bottom: an overflow faults instead of writing into whatever is
        // mapped below.
        // SAFETY: the first page of the mapping just made.
        if unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// Where a downward-growing stack starts.
    pub fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping.
        unsafe { (self.base as *mut u8).add(self.len) as *mut libc::c_void }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`. Its owner drops it only once the process that ran
        // on it has exited (or, after a fork, runs on its own copy).
        unsafe { libc::munmap(self.base, self.len) };
    }
}
