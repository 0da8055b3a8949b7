import Foundation
import Pickle
import SafeTensors

/// Finds the model named on the command line: a local directory or `.safetensors` file, or a
/// Hugging Face repository id (`org/name`) whose files are already in the local Hugging Face
/// cache. Nothing is downloaded; no network access is attempted.
///
/// The cache is the folder `huggingface_hub` uses: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`. A repository lives there
/// as `models--org--name/`, with `refs/<branch or tag>` files that hold a commit hash and
/// `snapshots/<commit>/` folders whose files are links into `blobs/`.
public enum ModelLocation {
  /// The directory or file to read for `input`: `input` itself when that path exists; otherwise,
  /// for an `org/name` id, its snapshot in the cache at `revision` (a branch or tag in `refs/`,
  /// or a commit in `snapshots/`; `main` when `nil`).
  ///
  /// - Throws: ``PipelineError`` (`invalidInput`) when `input` is neither an existing path nor a
  ///   repository in the cache (saying where it looked), when it is the root of a cache entry
  ///   instead of a snapshot, or when it holds only pickled `.bin` weights; (`invalidOption`)
  ///   when `revision` is given with a local path.
  public static func resolve(
    _ input: String, revision: String? = nil,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws(PipelineError) -> String {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) {
      if let revision {
        throw PipelineError(
          .invalidOption, "--revision \(revision) is for a repository id; \(input) is a local path", path: input)
      }
      if isDirectory.boolValue { try checkLayout(of: input) }
      return input
    }
    guard isRepositoryID(input) else {
      throw PipelineError(.invalidInput, "\(input): no such file or directory", path: input)
    }
    return try cached(input, revision: revision ?? "main", environment: environment)
  }

  /// Whether `text` has the shape of a Hugging Face repository id: `org/name`, each part
  /// letters, digits, `-`, `_` and `.`, not starting with `.` or `-`.
  static func isRepositoryID(_ text: String) -> Bool {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    return parts.count == 2
      && parts.allSatisfy { part in
        guard let first = part.first, first != ".", first != "-", !part.contains("..") else { return false }
        return part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
      }
  }

  /// The cache folder and the variable it came from.
  static func cacheFolder(_ environment: [String: String]) -> (path: String, source: String) {
    if let path = environment["HF_HUB_CACHE"], !path.isEmpty { return (path, "$HF_HUB_CACHE") }
    if let home = environment["HF_HOME"], !home.isEmpty {
      return ((home as NSString).appendingPathComponent("hub"), "$HF_HOME/hub")
    }
    if let cache = environment["XDG_CACHE_HOME"], !cache.isEmpty {
      return ((cache as NSString).appendingPathComponent("huggingface/hub"), "$XDG_CACHE_HOME/huggingface/hub")
    }
    let home = environment["HOME"] ?? NSHomeDirectory()
    return ((home as NSString).appendingPathComponent(".cache/huggingface/hub"), "~/.cache/huggingface/hub")
  }

  /// The snapshot of `repository` at `revision` in the cache.
  private static func cached(_ repository: String, revision: String, environment: [String: String])
    throws(PipelineError) -> String
  {
    let (cache, source) = cacheFolder(environment)
    let entry = (cache as NSString).appendingPathComponent(
      "models--" + repository.replacingOccurrences(of: "/", with: "--"))
    let manager = FileManager.default
    guard manager.fileExists(atPath: entry) else {
      throw PipelineError(
        .invalidInput,
        "\(repository) is not a local path, and the Hugging Face cache (\(source): \(cache)) does not hold it: "
          + "\(entry) does not exist. safeshard does not download; fetch it first, e.g. "
          + "`hf download \(repository)`, or give the model's directory",
        path: entry)
    }
    let snapshots = (entry as NSString).appendingPathComponent("snapshots")
    var commit = revision
    let ref = (entry as NSString).appendingPathComponent("refs/" + revision)
    if !revision.contains(".."), let data = manager.contents(atPath: ref) {
      commit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    let snapshot = (snapshots as NSString).appendingPathComponent(commit)
    var isDirectory: ObjCBool = false
    guard !commit.isEmpty, !commit.contains("/"), !commit.hasPrefix("."),
      manager.fileExists(atPath: snapshot, isDirectory: &isDirectory), isDirectory.boolValue
    else {
      let refs = ((try? manager.subpathsOfDirectory(atPath: (entry as NSString).appendingPathComponent("refs"))) ?? [])
        .sorted()
      let commits = ((try? manager.contentsOfDirectory(atPath: snapshots)) ?? []).sorted()
      throw PipelineError(
        .invalidInput,
        "\(repository) is in the Hugging Face cache (\(entry)), but not at revision \(revision): "
          + (commit == revision ? "" : "refs/\(revision) names \(commit), which is not in snapshots/; ")
          + "refs: \(refs.isEmpty ? "none" : refs.joined(separator: ", ")); "
          + "snapshots: \(commits.isEmpty ? "none" : commits.joined(separator: ", ")). Use --revision",
        path: entry)
    }
    try checkLayout(of: snapshot)
    return snapshot
  }

  /// Refuses, with a hint, a directory that is not a checkpoint but a common mistake for one: the
  /// root of a cache entry, or pickled weights under names transformers does not give them.
  private static func checkLayout(of directory: String) throws(PipelineError) {
    let manager = FileManager.default
    let names = Set((try? manager.contentsOfDirectory(atPath: directory)) ?? [])
    guard !names.contains("model.safetensors"), !names.contains(ShardIndex.fileName) else { return }
    if names.contains("snapshots") && names.contains("blobs") {
      let commits =
        ((try? manager.contentsOfDirectory(atPath: (directory as NSString).appendingPathComponent("snapshots"))) ?? [])
        .sorted()
      let name = (directory as NSString).lastPathComponent
      let repository =
        name.hasPrefix("models--") ? name.dropFirst("models--".count).replacingOccurrences(of: "--", with: "/") : nil
      throw PipelineError(
        .invalidInput,
        "\(directory) is the root of a Hugging Face cache entry, not a model directory: give one of its snapshots "
          + "(\(commits.map { "snapshots/\($0)" }.joined(separator: ", ")))"
          + (repository.map { ", or the repository id \($0)" } ?? ""),
        path: directory)
    }
    let pickled = names.filter { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".pth") }.sorted()
    if !pickled.isEmpty && !names.contains(where: { $0.hasSuffix(".safetensors") })
      && !names.contains(PickleInput.singleFile) && !names.contains(PickleCheckpointFile.indexFileName)
    {
      throw PipelineError(
        .invalidInput,
        "\(directory) holds \(pickled.prefix(3).joined(separator: ", "))\(pickled.count > 3 ? ", …" : "") "
          + "(PyTorch pickle) but neither \(PickleInput.singleFile) nor \(PickleCheckpointFile.indexFileName); "
          + "give the file itself as INPUT",
        path: directory)
    }
  }
}
