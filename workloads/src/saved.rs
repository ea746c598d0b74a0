//! System settings a run changes (the THP size controls, the HugeTLB pools), saved before
//! the first change in a state file under `/var/lib/foliobench` so that `foliobench
//! restore` can put them back after a killed run. One run at a time: the file is created
//! exclusively, and a file left by a run that is gone must be restored first.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::namespace::{foliobench_alive, wait_for_exit, STATE_DIR};

/// Settings as found, with the pid of the run that saved them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Saved<T> {
    pub pid: u32,
    #[serde(flatten)]
    pub settings: T,
}

/// One kind of saved settings: its state file and how it is named in messages.
pub struct StateFile {
    /// `thp-state.json`, `hugetlb-state.json`.
    pub name: &'static str,
    /// "the THP size controls", "the HugeTLB controls".
    pub what: &'static str,
}

impl StateFile {
    pub fn path(&self) -> PathBuf {
        PathBuf::from(STATE_DIR).join(self.name)
    }

    /// Saves `settings` for this run (refusing if another run holds them or a killed run
    /// left them unrestored); `put_back` restores them, by `Held::restore` or on drop.
    pub fn hold<T: Serialize + DeserializeOwned>(
        &'static self,
        settings: T,
        put_back: fn(&T) -> Result<(), String>,
    ) -> Result<Held<T>, String> {
        let saved = self.save(settings)?;
        Ok(Held {
            file: self,
            settings: saved.settings,
            put_back,
            restored: false,
        })
    }

    fn save<T: Serialize + DeserializeOwned>(&self, settings: T) -> Result<Saved<T>, String> {
        let path = self.path();
        if let Ok(text) = fs::read_to_string(&path) {
            let owner = serde_json::from_str::<Saved<serde_json::Value>>(&text).map(|s| s.pid);
            return Err(match owner {
                Ok(pid) if foliobench_alive(pid) => format!(
                    "pid {pid} (foliobench) is using {} now; wait for it to finish",
                    self.what
                ),
                _ => format!(
                    "a previous run left {} changed ({}); run `foliobench restore` first",
                    self.what,
                    text.trim()
                ),
            });
        }
        let saved = Saved {
            pid: std::process::id(),
            settings,
        };
        fs::create_dir_all(STATE_DIR).map_err(|e| format!("{STATE_DIR}: {e}"))?;
        // create_new: of two runs starting at once, one saves and the other is refused.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| {
                std::io::Write::write_all(
                    &mut f,
                    &serde_json::to_vec_pretty(&saved).expect("serializable"),
                )
            })
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => format!(
                    "{}: another foliobench run saved {} just now; wait for it to finish",
                    path.display(),
                    self.what
                ),
                _ => format!("{}: {e}", path.display()),
            })?;
        Ok(saved)
    }

    /// The settings are back: the state file goes.
    fn forget(&self) {
        let _ = fs::remove_file(self.path());
    }

    /// `foliobench restore`'s part: the settings a killed run left, put back by `restore`,
    /// if any. The run that saved them must be gone (it restores them itself on its way
    /// out): this waits up to `wait` for it, then refuses.
    pub fn restore_left<T: DeserializeOwned>(
        &self,
        wait: Duration,
        restore: impl FnOnce(&T) -> Result<(), String>,
    ) -> Result<Option<T>, String> {
        let path = self.path();
        let Ok(text) = fs::read_to_string(&path) else {
            return Ok(None);
        };
        let saved: Saved<T> =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        wait_for_exit(saved.pid, wait, self.what)?;
        // It may have restored them on its way out.
        if !path.exists() {
            return Ok(None);
        }
        restore(&saved.settings)?;
        self.forget();
        Ok(Some(saved.settings))
    }
}

/// Settings this run saved: put back by `restore`, or on drop (saying so if that fails).
pub struct Held<T> {
    file: &'static StateFile,
    /// As found.
    pub settings: T,
    put_back: fn(&T) -> Result<(), String>,
    restored: bool,
}

impl<T> Held<T> {
    /// Puts the settings back and forgets the saved state.
    pub fn restore(&mut self) -> Result<(), String> {
        if self.restored {
            return Ok(());
        }
        (self.put_back)(&self.settings)?;
        self.file.forget();
        self.restored = true;
        Ok(())
    }
}

impl<T> Drop for Held<T> {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!(
                "foliobench: could not restore {}: {e}; they are saved in {}: run `foliobench restore`",
                self.file.what,
                self.file.path().display()
            );
        }
    }
}
