//! The outage journal's file: what the journal takes is written and synced
//! before the webhook answers 202, so a process killed while the store is
//! down leaves it to the next process that opens the directory.
//!
//! Each process writes one file, `<instance>.<millis>.<pid>.journal`, of JSON
//! lines, and holds an exclusive lock on it while it runs. At start a process
//! takes over every file in the directory that nobody holds (its writer is
//! gone): their items go into its own file and queue first, and the old files
//! are removed. The file is emptied once every item in it is in the store.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use graph_comms_model::CallId;
use serde::{Deserialize, Serialize};

use graph_comms_core::shared_store::InboxItem;

const EXTENSION: &str = "journal";

/// One line of the file.
#[derive(Serialize, Deserialize)]
struct Line {
    call_id: CallId,
    item: InboxItem,
}

/// This process's journal file, locked while it lives.
#[derive(Debug)]
pub(super) struct JournalFile {
    file: File,
    path: PathBuf,
}

/// What [`JournalFile::open`] found and made.
pub(super) struct Opened {
    pub(super) file: JournalFile,
    /// Items left by processes that stopped, oldest file first; already in `file`.
    pub(super) recovered: Vec<(CallId, InboxItem)>,
}

impl JournalFile {
    /// Creates this process's file in `dir` and takes over the files nobody holds.
    pub(super) fn open(dir: &Path, instance: &str) -> std::io::Result<Opened> {
        std::fs::create_dir_all(dir)?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let path = dir.join(format!("{instance}.{millis:013}.{}.{EXTENSION}", std::process::id()));
        let file = OpenOptions::new().create_new(true).append(true).open(&path)?;
        file.try_lock().map_err(std::io::Error::other)?;
        let mut journal = Self { file, path };

        let mut left: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.extension().is_some_and(|e| e == EXTENSION) && *p != journal.path)
            .collect();
        left.sort();
        let mut recovered = Vec::new();
        let mut taken = Vec::new();
        for path in left {
            let Ok(old) = OpenOptions::new().read(true).write(true).open(&path) else {
                continue;
            };
            // Held: its process runs and replays it itself.
            if old.try_lock().is_err() {
                continue;
            }
            recovered.extend(read_lines(&old, &path));
            taken.push((path, old));
        }
        if !recovered.is_empty() {
            journal.write(&recovered)?;
            tracing::warn!(
                items = recovered.len(),
                "outage journal: taking over notifications a stopped process kept while the store was down"
            );
        }
        // Only once they are in this file: a crash before this leaves them where they were.
        for (path, _lock) in taken {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), "outage journal: cannot remove a file taken over: {error}");
            }
        }
        Ok(Opened {
            file: journal,
            recovered,
        })
    }

    /// Appends `items` and syncs them to the disk.
    pub(super) fn write(&mut self, items: &[(CallId, InboxItem)]) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for (call_id, item) in items {
            serde_json::to_writer(
                &mut bytes,
                &Line {
                    call_id: call_id.clone(),
                    item: item.clone(),
                },
            )
            .map_err(std::io::Error::other)?;
            bytes.push(b'\n');
        }
        self.file.write_all(&bytes)?;
        self.file.sync_data()
    }

    /// Empties the file: everything in it is in the store.
    pub(super) fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_data()
    }
}

impl Drop for JournalFile {
    fn drop(&mut self) {
        // An empty file is no news for the next process; one with items is.
        if self.file.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The items of a file left by a stopped process; a torn last line (the
/// process died writing it, before its 202) is skipped.
fn read_lines(file: &File, path: &Path) -> Vec<(CallId, InboxItem)> {
    let mut items = Vec::new();
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Line>(&line) {
            Ok(Line { call_id, item }) => items.push((call_id, item)),
            Err(error) => {
                tracing::warn!(path = %path.display(), "outage journal: skipping an unreadable line: {error}");
            }
        }
    }
    items
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn item(call: &str, sequence: u64) -> (CallId, InboxItem) {
        let notification = serde_json::from_value(serde_json::json!({
            "@odata.type": "#microsoft.graph.commsNotification",
            "changeType": "updated",
            "resourceUrl": format!("/communications/calls/{call}"),
            "resourceData": {"@odata.type": "#microsoft.graph.call", "state": "established", "sequenceId": sequence}
        }))
        .unwrap();
        let item = InboxItem::Notification {
            tenant_id: "tenant".into(),
            received_at: UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_000 + sequence),
            notification: Box::new(notification),
            delivery: graph_comms_core::shared_store::InboxDelivery::default(),
        };
        (CallId::from(call), item)
    }

    /// A fresh directory under the system's temporary one, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("outage-journal-{name}-{}", uuid::Uuid::new_v4().simple()));
            Self(path)
        }

        fn files(&self) -> Vec<PathBuf> {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            files
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_file_left_by_a_stopped_process_is_taken_over_in_order_and_removed() {
        let dir = Dir::new("taken");
        let mut first = JournalFile::open(&dir.0, "a").unwrap().file;
        let items = vec![item("c1", 1), item("c2", 2), item("c1", 3)];
        first.write(&items[..2]).unwrap();
        first.write(&items[2..]).unwrap();
        let left = first.path.clone();
        drop(first);

        let second = JournalFile::open(&dir.0, "b").unwrap();
        assert_eq!(second.recovered, items);
        assert!(!left.exists(), "the file taken over is removed");
        assert_eq!(dir.files(), std::slice::from_ref(&second.file.path));
        let again = read_lines(&File::open(&second.file.path).unwrap(), &second.file.path);
        assert_eq!(again, items, "the items are in the new file before the old one goes");
    }

    #[test]
    fn a_file_whose_process_still_runs_is_left_alone() {
        let dir = Dir::new("held");
        let mut running = JournalFile::open(&dir.0, "a").unwrap().file;
        running.write(&[item("c1", 1)]).unwrap();

        let other = JournalFile::open(&dir.0, "b").unwrap();
        assert!(other.recovered.is_empty());
        assert!(running.path.exists());
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_rest_recovered() {
        let dir = Dir::new("torn");
        let mut first = JournalFile::open(&dir.0, "a").unwrap().file;
        first.write(&[item("c1", 1)]).unwrap();
        first.file.write_all(br#"{"call_id":"c2","it"#).unwrap();
        drop(first);

        let second = JournalFile::open(&dir.0, "b").unwrap();
        assert_eq!(second.recovered, vec![item("c1", 1)]);
    }

    #[test]
    fn an_emptied_file_is_removed_when_its_process_stops() {
        let dir = Dir::new("empty");
        let mut journal = JournalFile::open(&dir.0, "a").unwrap().file;
        journal.write(&[item("c1", 1)]).unwrap();
        journal.clear().unwrap();
        drop(journal);
        assert!(dir.files().is_empty(), "{:?}", dir.files());

        let next = JournalFile::open(&dir.0, "b").unwrap();
        assert!(next.recovered.is_empty());
    }
}
