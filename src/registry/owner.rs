//! Which process wrote a gc lock or a backup's hold, well enough for another
//! process on the same machine to tell whether the writer still runs. The
//! lock of a gc killed here (kill -9, the OOM killer, a restarted container
//! sharing the pid namespace) is then taken over at once, instead of after
//! the minute a lock needs to go stale. A writer on another machine, or in
//! another pid namespace, cannot be told apart from a live one: its lock
//! still waits to go stale.

/// `<boot id>/<pid namespace>/<pid>/<start time>`: a pid alone is reused,
/// and means another process after a reboot or in another namespace. None
/// where there is no Linux `/proc`.
pub fn me() -> Option<String> {
    identify(std::process::id())
}

fn identify(pid: u32) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, counted from the state (field 3) that follows the command
    // name, which may itself hold spaces and parentheses.
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    Some(format!(
        "{}/{}/{pid}/{start}",
        boot.trim(),
        namespace.display()
    ))
}

/// Whether the process `id` (from `me`) is known to have ended: it ran on
/// this machine since its last boot, in this pid namespace, and its pid is
/// gone or is another process's now.
pub fn is_gone(id: &str) -> bool {
    let Some(mine) = me() else {
        return false;
    };
    let (here, theirs): (Vec<&str>, Vec<&str>) =
        (mine.split('/').collect(), id.split('/').collect());
    if theirs.len() != 4 || theirs[..2] != here[..2] {
        return false;
    }
    match theirs[2].parse::<u32>() {
        Ok(pid) => identify(pid).is_none_or(|now| now != id),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_ended_here_is_gone_and_others_are_not_known() {
        let me = me().expect("Linux /proc");
        assert!(!is_gone(&me), "this process runs");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let child_id = identify(child.id());
        child.wait().unwrap();
        if let Some(id) = child_id {
            assert!(is_gone(&id), "{id} ended");
        }
        // Its pid, with another start time: the pid was reused.
        let parts: Vec<&str> = me.split('/').collect();
        let reused = format!("{}/{}/{}/1", parts[0], parts[1], parts[2]);
        assert!(is_gone(&reused));
        // Another machine, another namespace, or nonsense: not known.
        let elsewhere = format!("another-boot/{}/{}/{}", parts[1], parts[2], parts[3]);
        assert!(!is_gone(&elsewhere));
        let other_ns = format!("{}/pid:[1]/999999/5", parts[0]);
        assert!(!is_gone(&other_ns));
        assert!(!is_gone("junk"));
        assert!(!is_gone(""));
    }
}
