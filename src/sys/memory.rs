//! Memory given back to the kernel by a process that has finished its heavy work.

/// Give back what the start needed: free heap pages, and the page-table entries of the
/// binary's read-only and code pages the CLI and the start touched (clean file pages: they
/// stay in the page cache and fault back in when the supervisor runs that code again, so only
/// the few pages its wait loop uses stay resident).
pub fn shed() {
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    let (Ok(exe), Ok(smaps)) = (
        std::fs::read_link("/proc/self/exe"),
        std::fs::read_to_string("/proc/self/smaps"),
    ) else {
        return;
    };
    let exe = exe.to_string_lossy().into_owned();
    // Mappings of the executable that are not writable and hold no anonymous (copied) page:
    // RELRO, for one, is read-only now but was written at load time, and must stay.
    let mut current: Option<(usize, usize)> = None;
    let mut clean = Vec::new();
    for line in smaps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let Some(range) = f.first().and_then(|a| a.split_once('-')) {
            if let (Ok(lo), Ok(hi)) = (
                usize::from_str_radix(range.0, 16),
                usize::from_str_radix(range.1, 16),
            ) {
                // address perms offset dev inode path
                current = (f.len() >= 6 && f[5] == exe && !f[1].contains('w')).then_some((lo, hi));
                continue;
            }
        }
        if f.first() == Some(&"Anonymous:") {
            if let Some(r) = current.take() {
                if f.get(1) == Some(&"0") {
                    clean.push(r);
                }
            }
        }
    }
    for (lo, hi) in clean {
        // SAFETY: the range maps the executable read-only and holds no anonymous page, so
        // every page in it is the file's own: dropping the page-table entries loses nothing,
        // and the next access reads the same bytes from the page cache.
        unsafe {
            libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED);
        }
    }
}
