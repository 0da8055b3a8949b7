import Foundation

/// The files of a model directory that its converted output receives besides the weights:
/// every regular file of the tree, sub-folders included, found through symbolic links (a
/// Hugging Face cache snapshot is links into `../../blobs/`), except dot-files and dot-folders
/// (`.git`, `.cache`), weights in any format, indexes, and `SHA256SUMS` (the output writes its
/// own).
///
/// What is left out and worth saying is in ``skipped``: FIFOs, devices and sockets (copying
/// one would block or make no sense), weights in sub-folders (`original/consolidated.00.pth`),
/// and names `SHA256SUMS` cannot hold.
struct InputFiles: Sendable, Equatable {
  /// A file that is not copied, and why.
  struct Skipped: Sendable, Equatable {
    /// The path relative to the input directory.
    var path: String
    var reason: String
  }

  /// The paths of the files to copy, relative to the input directory, sorted.
  var files: [String]
  /// What is not copied and worth a warning.
  var skipped: [Skipped]

  /// File name endings of weights in other formats, which are not copied: the output holds the
  /// converted weights, and pickled ones (`.bin`, `.pt`) are what safetensors replaces.
  static let weightSuffixes = [
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx", ".index.json",
  ]

  /// Walks `input`, following links, leaving out the folder `excluding` (the output, when it is
  /// inside the input, but not when it is the input) and any folder seen before (a link cycle).
  init(scanning input: String, excluding: String? = nil) {
    var files: [String] = []
    var skipped: [Skipped] = []
    var seen = Set<FileIdentity>()
    if let excluding, let identity = FileIdentity(path: excluding), identity != FileIdentity(path: input) {
      seen.insert(identity)
    }
    let root = ChecksumList.realPath(input) ?? input
    func walk(_ relative: String) {
      let directory = relative.isEmpty ? input : join(input, relative)
      guard let identity = FileIdentity(path: directory), seen.insert(identity).inserted else { return }
      let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
      for name in names where !name.hasPrefix(".") {
        let path = relative.isEmpty ? name : relative + "/" + name
        var status = stat()
        guard stat(join(input, path), &status) == 0 else {
          skipped.append(Skipped(path: path, reason: "a broken symbolic link"))
          continue
        }
        switch status.st_mode & S_IFMT {
        case S_IFDIR:
          // A link may lead anywhere (`x -> /`): only folders inside the input are walked.
          guard let real = ChecksumList.realPath(join(input, path)), ChecksumList.isInside(real, root) else {
            skipped.append(Skipped(path: path, reason: "a link to a folder outside the input"))
            continue
          }
          walk(path)
        case S_IFREG where relative.isEmpty && name == ChecksumList.fileName:
          continue  // the output gets its own
        case S_IFREG where Self.weightSuffixes.contains(where: { name.hasSuffix($0) }):
          if !relative.isEmpty { skipped.append(Skipped(path: path, reason: "weights in a sub-folder are not copied")) }
        case S_IFREG where path.contains("\n") || path.contains("\\"):
          skipped.append(Skipped(path: path, reason: "its name cannot be listed in SHA256SUMS"))
        case S_IFREG:
          files.append(path)
        default:
          skipped.append(Skipped(path: path, reason: "not a regular file (a FIFO, device or socket)"))
        }
      }
    }
    walk("")
    self.files = files.sorted()
    self.skipped = skipped
  }

  /// A file's device and inode: what tells two paths to the same folder apart from two folders.
  private struct FileIdentity: Hashable {
    var device: UInt64
    var inode: UInt64

    init?(path: String) {
      var status = stat()
      guard stat(path, &status) == 0 else { return nil }
      device = UInt64(status.st_dev)
      inode = UInt64(status.st_ino)
    }
  }
}
