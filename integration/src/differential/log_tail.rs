//! A proxy's log read as it grows: the scripted filters' lines, per scenario.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Mutex;

/// The scripted filters' lines of one proxy's log, by scenario id (`TAG SID WHAT` is kept as
/// `TAG WHAT` under SID), read incrementally.
pub struct LogTail {
    path: PathBuf,
    state: Mutex<TailState>,
}

#[derive(Default)]
struct TailState {
    offset: u64,
    partial: String,
    by_sid: HashMap<String, Vec<String>>,
}

impl LogTail {
    /// Follows the log at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path, state: Mutex::default() }
    }

    /// The lines of scenario `sid` so far.
    pub fn lines(&self, sid: &str) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.read_more(&self.path);
        state.by_sid.get(sid).cloned().unwrap_or_default()
    }
}

impl TailState {
    fn read_more(&mut self, path: &PathBuf) {
        let Ok(mut file) = std::fs::File::open(path) else { return };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        let Ok(n) = file.read_to_end(&mut bytes) else { return };
        self.offset += n as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let Some(end) = self.partial.rfind('\n') else { return };
        let complete: String = self.partial.drain(..=end).collect();
        for line in complete.lines() {
            if let Some((sid, line)) = scripted_line(line) {
                self.by_sid.entry(sid).or_default().push(line);
            }
        }
    }
}

/// A scripted filter's message in a log line (`… wasm log NAME ROOT VM: TAG SID WHAT`), as its
/// scenario id and `TAG WHAT`.
fn scripted_line(line: &str) -> Option<(String, String)> {
    let at = line.find("wasm log")?;
    let (_, msg) = line[at..].split_once(": ")?;
    let mut words = msg.splitn(3, ' ');
    let (tag, sid, what) = (words.next()?, words.next()?, words.next().unwrap_or(""));
    if !matches!(tag, "A" | "B") {
        return None;
    }
    Some((sid.to_string(), format!("{tag} {what}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_envoys_and_sluices_lines() {
        let envoy = "[2026-12-07 21:40:01.123][12][info][wasm] [source/extensions/common/wasm/context.cc:1195] wasm log A A A: A 17 rqh n=3 eos=true [x-sid:17]";
        assert_eq!(super::scripted_line(envoy), Some(("17".into(), "A rqh n=3 eos=true [x-sid:17]".into())));
        let sluice = "2026-12-07T21:40:01.123Z  INFO wasm log B B B: B 4 done";
        assert_eq!(super::scripted_line(sluice), Some(("4".into(), "B done".into())));
        assert_eq!(super::scripted_line("wasm log A A A: hello there"), None);
    }
}
