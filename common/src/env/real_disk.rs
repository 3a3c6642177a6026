//! `RealDisk`: the `Disk` seam over std::fs, with fsync for file contents and for
//! directories (so renames survive power loss).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::disk::{validate_path, DirEntry, Disk, DiskFile, OpenMode};

#[derive(Debug)]
pub struct RealDisk {
    root: PathBuf,
}

impl RealDisk {
    /// Opens (creating if needed) a disk rooted at `root`.
    pub fn open(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn resolve(&self, path: &str) -> io::Result<PathBuf> {
        validate_path(path)?;
        Ok(self.root.join(path))
    }

    fn resolve_dir(&self, path: &str) -> io::Result<PathBuf> {
        if path.is_empty() {
            Ok(self.root.clone())
        } else {
            self.resolve(path)
        }
    }
}

impl Disk for RealDisk {
    fn open(&self, path: &str, mode: OpenMode) -> io::Result<Arc<dyn DiskFile>> {
        let full = self.resolve(path)?;
        let mut opts = OpenOptions::new();
        match mode {
            OpenMode::Read => opts.read(true),
            OpenMode::ReadWrite => opts.read(true).write(true),
            OpenMode::CreateNew => opts.read(true).write(true).create_new(true),
            OpenMode::CreateOrOpen => opts.read(true).write(true).create(true).truncate(false),
        };
        let file = opts.open(full)?;
        Ok(Arc::new(RealFile { file }))
    }

    fn remove_file(&self, path: &str) -> io::Result<()> {
        std::fs::remove_file(self.resolve(path)?)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.resolve(from)?, self.resolve(to)?)
    }

    fn create_dir_all(&self, path: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.resolve_dir(path)?)
    }

    fn list_dir(&self, path: &str) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.resolve_dir(path)?)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not ours: Shale only writes UTF-8 names
            };
            out.push(DirEntry {
                name,
                is_dir: entry.file_type()?.is_dir(),
            });
        }
        out.sort();
        Ok(out)
    }

    fn sync_dir(&self, path: &str) -> io::Result<()> {
        File::open(self.resolve_dir(path)?)?.sync_all()
    }

    fn exists(&self, path: &str) -> io::Result<bool> {
        self.resolve_dir(path)?.try_exists()
    }
}

#[derive(Debug)]
struct RealFile {
    file: File,
}

impl DiskFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}
