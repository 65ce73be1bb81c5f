//! Where a YOLO data set's images and labels are: the images of a folder or of a list file, and each
//! image's label file (as ultralytics finds it).

use std::path::{Path, PathBuf};

use thiserror::Error;

/// The image file extensions ultralytics reads (compared without case).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff"];

/// A data set whose images cannot be found.
#[derive(Debug, Error)]
pub enum DatasetError {
    #[error("{}: cannot read the images folder: {source}", dir.display())]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no images ({}) in the images folder", dir.display(), IMAGE_EXTENSIONS.join(", "))]
    NoImages { dir: PathBuf },
    #[error("{}: cannot read the list file: {source}", list.display())]
    ReadList {
        list: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the list file names no image", list.display())]
    EmptyList { list: PathBuf },
}

/// The images in `dir` (not its subfolders), sorted by path.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DatasetError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut images: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    images.sort();
    if images.is_empty() {
        return Err(DatasetError::NoImages {
            dir: dir.to_path_buf(),
        });
    }
    Ok(images)
}

/// The images a list file names (see [`crate::parse_image_list`]), relative ones resolved against `base`.
pub fn read_image_list(list: &Path, base: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let text = std::fs::read_to_string(list).map_err(|source| DatasetError::ReadList {
        list: list.to_path_buf(),
        source,
    })?;
    let images: Vec<PathBuf> = crate::parse_image_list(&text)
        .into_iter()
        .map(|p| base.join(p))
        .collect();
    if images.is_empty() {
        return Err(DatasetError::EmptyList {
            list: list.to_path_buf(),
        });
    }
    Ok(images)
}

/// Where an image's labels are: in `labels`, or where ultralytics looks (`images` → `labels`).
pub fn label_path(image: &Path, labels: Option<&Path>) -> PathBuf {
    // `a.b.jpg` is labelled by `a.b.txt`: append the extension, never replace part of the stem.
    let stem = image.file_stem().unwrap_or_default().to_string_lossy();
    let file = format!("{stem}.txt");
    match labels {
        Some(dir) => dir.join(file),
        None => {
            let parent = image.parent().unwrap_or(Path::new(""));
            let dir = if parent.file_name().is_some_and(|n| n == "images") {
                parent.with_file_name("labels")
            } else {
                parent.to_path_buf()
            };
            dir.join(file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sit_beside_images_as_ultralytics_finds_them() {
        assert_eq!(
            label_path(Path::new("d/images/a.b.jpg"), None),
            PathBuf::from("d/labels/a.b.txt")
        );
        assert_eq!(
            label_path(Path::new("d/pics/a.jpg"), None),
            PathBuf::from("d/pics/a.txt")
        );
        assert_eq!(
            label_path(Path::new("d/images/a.jpg"), Some(Path::new("l"))),
            PathBuf::from("l/a.txt")
        );
    }

    #[test]
    fn folders_and_lists_name_their_images() {
        let dir = tempfile::tempdir().expect("temp dir");
        for f in ["b.JPG", "a.png", "notes.txt"] {
            std::fs::write(dir.path().join(f), b"x").expect("write");
        }
        let found = list_images(dir.path()).expect("images");
        assert_eq!(
            found,
            vec![dir.path().join("a.png"), dir.path().join("b.JPG")]
        );
        std::fs::remove_file(dir.path().join("a.png")).expect("rm");
        std::fs::remove_file(dir.path().join("b.JPG")).expect("rm");
        assert!(matches!(
            list_images(dir.path()),
            Err(DatasetError::NoImages { .. })
        ));
        let list = dir.path().join("test.txt");
        std::fs::write(&list, "# split\nimages/x.jpg\n\n").expect("write");
        assert_eq!(
            read_image_list(&list, Path::new("/data")).expect("list"),
            vec![PathBuf::from("/data/images/x.jpg")]
        );
        std::fs::write(&list, "# nothing\n").expect("write");
        assert!(matches!(
            read_image_list(&list, Path::new("/data")),
            Err(DatasetError::EmptyList { .. })
        ));
    }
}
