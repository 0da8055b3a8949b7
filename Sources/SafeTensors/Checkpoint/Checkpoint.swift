import Foundation

/// A Hugging Face checkpoint opened for reading: one `.safetensors` file, a directory with
/// `model.safetensors`, or a directory with shards and `model.safetensors.index.json`.
///
/// Opening validates every file's header and, for a sharded checkpoint, the index against the
/// shards: the index lists at least one tensor, every shard name is a plain file name (checked
/// before any file is opened), every named shard exists, every tensor the index lists is in the
/// shard it names, no tensor is in two shards, every tensor in a shard is listed, and no other
/// `.safetensors` file of the directory holds tensors the index does not list (a shard the index
/// forgot). Mistral's `consolidated*.safetensors`, the same weights under other names beside the
/// transformers shards, is left alone.
public struct Checkpoint: Sendable {
  /// The directory or file that was opened.
  public let path: String
  /// The safetensors files, sorted by file name (one for an unsharded checkpoint).
  public let files: [SafeTensorsFile]
  /// The index, for a sharded checkpoint.
  public let index: ShardIndex?
  /// What the files are: `safetensors`, or the format of files presented as safetensors.
  public let format: String
  /// Whether the files present the dequantized values of a checkpoint that another tool
  /// quantized: the `quantization_config` of its `config.json` no longer describes them.
  public let isDequantized: Bool
  /// Each tensor's file and its position in that file's header.
  private let locations: [ExactName: (file: Int, tensor: Int)]
  /// Where each file's tensors start in ``tensors``, and (last) their count.
  private let starts: [Int]

  /// The number of tensors in all files.
  public var tensorCount: Int { starts.last! }

  /// Every tensor with the file that holds it, file by file in data order.
  public var tensors: [(tensor: TensorInfo, file: SafeTensorsFile)] {
    files.flatMap { file in file.header.tensors.map { ($0, file) } }
  }

  /// The file that holds the tensor named `name`.
  ///
  /// - Throws: `tensorNotFound`.
  public func file(holding name: String) throws(SafeTensorsError) -> SafeTensorsFile {
    try tensor(named: name).file
  }

  /// The entry named `name` and the file that holds it, found with one lookup.
  ///
  /// - Throws: `tensorNotFound`.
  public func tensor(named name: String) throws(SafeTensorsError) -> (tensor: TensorInfo, file: SafeTensorsFile) {
    guard let location = location(of: name) else {
      throw SafeTensorsError(.tensorNotFound, "no such tensor in the checkpoint", file: path, tensor: name)
    }
    return (location.tensor, location.file)
  }

  /// The entry named `name`, the file that holds it and its position in ``tensors``, found with
  /// one lookup, or `nil`.
  public func location(of name: String) -> (tensor: TensorInfo, file: SafeTensorsFile, position: Int)? {
    guard let location = locations[ExactName(name)] else { return nil }
    let file = files[location.file]
    return (file.header.tensors[location.tensor], file, starts[location.file] + location.tensor)
  }

  /// ``location(of:)``, looking first at the tensor stored right after the one at `position` in
  /// ``tensors``: a torchao weight's parts are usually written one after
  /// another, and the name found there is compared, not looked up in the table of every name.
  public func location(of name: String, after position: Int) -> (
    tensor: TensorInfo, file: SafeTensorsFile, position: Int
  )? {
    let next = position + 1
    // The file whose tensors hold `next`: the last one that starts at or before it.
    var (low, high) = (0, files.count)
    while low < high {
      let middle = (low + high) / 2
      if starts[middle + 1] <= next { low = middle + 1 } else { high = middle }
    }
    if low < files.count, next >= starts[low] {
      let tensor = files[low].header.tensors[next - starts[low]]
      if ExactName(tensor.name) == ExactName(name) { return (tensor, files[low], next) }
    }
    return location(of: name)
  }

  /// Opens and validates the checkpoint at `path`.
  ///
  /// - Throws: the first problem found, as a ``SafeTensorsError``.
  public init(path: String) throws(SafeTensorsError) {
    var problems: [SafeTensorsError] = []
    guard let checkpoint = Self.load(path, problems: &problems), problems.isEmpty else {
      throw problems.first!
    }
    self = checkpoint
  }

  /// Every problem with the checkpoint at `path`, or `[]` when it is valid.
  ///
  /// Each file is checked on its own (a file's first header problem is reported), then the
  /// index against the shards (every mismatch is reported).
  public static func problems(at path: String) -> [SafeTensorsError] {
    var problems: [SafeTensorsError] = []
    _ = load(path, problems: &problems)
    return problems
  }

  /// The checkpoint at `path` whose files, of the format `format`, are presented as safetensors
  /// (``SafeTensorsFile/init(presenting:header:source:)``); `dequantized` when they present the
  /// dequantized values of a quantized checkpoint (``isDequantized``).
  ///
  /// - Throws: `duplicateTensor` when two files present the same tensor name.
  public init(path: String, presenting files: [SafeTensorsFile], format: String, dequantized: Bool = false)
    throws(SafeTensorsError)
  {
    var problems: [SafeTensorsError] = []
    let locations = Self.locations(of: files, problems: &problems)
    if let duplicate = problems.first { throw duplicate }
    self.init(path: path, files: files, index: nil, locations: locations, format: format, dequantized: dequantized)
  }

  private init(
    path: String, files: [SafeTensorsFile], index: ShardIndex?, locations: [ExactName: (file: Int, tensor: Int)],
    format: String = "safetensors", dequantized: Bool = false
  ) {
    self.path = path
    self.isDequantized = dequantized
    self.files = files
    self.index = index
    self.format = format
    self.locations = locations
    self.starts = Self.starts(of: files)
  }

  private static func load(_ path: String, problems: inout [SafeTensorsError]) -> Checkpoint? {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      problems.append(SafeTensorsError(.io, "no such file or directory", file: path))
      return nil
    }
    guard isDirectory.boolValue else {
      return loadSingle(path, checkpointPath: path, problems: &problems)
    }
    let single = (path as NSString).appendingPathComponent("model.safetensors")
    if FileManager.default.fileExists(atPath: single) {
      return loadSingle(single, checkpointPath: path, problems: &problems)
    }
    let indexPath = (path as NSString).appendingPathComponent(ShardIndex.fileName)
    guard FileManager.default.fileExists(atPath: indexPath) else {
      problems.append(
        SafeTensorsError(.notACheckpoint, "holds neither model.safetensors nor \(ShardIndex.fileName)", file: path))
      return nil
    }
    return loadSharded(directory: path, indexPath: indexPath, problems: &problems)
  }

  private static func loadSingle(_ file: String, checkpointPath: String, problems: inout [SafeTensorsError])
    -> Checkpoint?
  {
    do {
      let opened = try SafeTensorsFile(path: file)
      let locations = Dictionary(
        uniqueKeysWithValues: opened.header.tensors.enumerated().map { (ExactName($1.name), (file: 0, tensor: $0)) })
      return Checkpoint(path: checkpointPath, files: [opened], index: nil, locations: locations)
    } catch {
      problems.append(error)
      return nil
    }
  }

  private static func loadSharded(directory: String, indexPath: String, problems: inout [SafeTensorsError])
    -> Checkpoint?
  {
    let index: ShardIndex
    do {
      guard let data = FileManager.default.contents(atPath: indexPath) else {
        throw SafeTensorsError(.io, "cannot read", file: indexPath)
      }
      index = try ShardIndex.decode(Array(data), path: indexPath)
    } catch let error as SafeTensorsError {
      problems.append(error)
      return nil
    } catch {
      problems.append(SafeTensorsError(.io, "\(error)", file: indexPath))
      return nil
    }

    if index.weightMap.isEmpty {
      problems.append(
        SafeTensorsError(.indexFormat, "its weight_map is empty: the index lists no tensors", file: indexPath))
    }
    var files: [SafeTensorsFile] = []
    var positionOfName: [String: Int] = [:]
    let metadataCache = HeaderScan.MetadataCache()
    for name in index.shardFiles.sorted(by: utf8Less) {
      let shardPath = (directory as NSString).appendingPathComponent(name)
      guard FileManager.default.fileExists(atPath: shardPath) else {
        problems.append(
          SafeTensorsError(.missingShard, "names shard \"\(name)\", which does not exist", file: indexPath))
        continue
      }
      do {
        positionOfName[name] = files.count
        files.append(try SafeTensorsFile(path: shardPath, metadataCache: metadataCache))
      } catch {
        positionOfName[name] = nil
        problems.append(error)
      }
    }

    // Each stored tensor's position over all files, file by file: where its "listed" flag is.
    let starts = Self.starts(of: files)
    let problemsBefore = problems.count
    let locations = Self.locations(of: files, problems: &problems)
    let hasDuplicates = problems.count > problemsBefore
    // Every entry of the index is checked with one lookup, and marks the stored tensor it names;
    // the index's names are distinct (JSON refuses a repeated key), so a tensor left unmarked is
    // one the index does not list, unless its name is in two shards (reported above), when the
    // names decide.
    var isListed = [Bool](repeating: false, count: starts.last!)
    var lastShard: (name: String, position: Int?)?
    for (tensor, name) in index.weightMap {
      let location = locations[ExactName(tensor)]
      if let location { isListed[starts[location.file] + location.tensor] = true }
      let position: Int?
      if let lastShard, ExactName(lastShard.name) == ExactName(name) {
        position = lastShard.position
      } else {
        position = positionOfName[name]
        lastShard = (name, position)
      }
      // A missing or invalid shard is reported above.
      guard let position, location?.file != position else { continue }
      if !hasDuplicates || files[position].header.tensor(named: tensor) == nil {
        let actual = location.map { "it is in \(files[$0.file].path)" } ?? "no shard holds it"
        problems.append(
          SafeTensorsError(
            .indexMismatch, "the index puts it in \(name), but \(actual)", file: indexPath, tensor: tensor))
      }
    }
    lazy var listed = Set(index.weightMap.lazy.map { ExactName($0.tensor) })
    for (position, file) in files.enumerated() {
      for (index, tensor) in file.header.tensors.enumerated() where !isListed[starts[position] + index] {
        guard !hasDuplicates || !listed.contains(ExactName(tensor.name)) else { continue }
        problems.append(
          SafeTensorsError(.indexMismatch, "is in the shard but not in the index", file: file.path, tensor: tensor.name)
        )
      }
    }
    problems += unlistedShardProblems(directory: directory, index: index) { listed }
    return Checkpoint(path: directory, files: files, index: index, locations: locations)
  }

  /// Where each file's tensors start in ``tensors``, and (last) their count.
  private static func starts(of files: [SafeTensorsFile]) -> [Int] {
    var starts = [0]
    for file in files { starts.append(starts.last! + file.header.tensors.count) }
    return starts
  }

  /// Each tensor's file and position in that file's header, by name; a name in two files adds a
  /// `duplicateTensor` problem (and the later file's is kept).
  private static func locations(of files: [SafeTensorsFile], problems: inout [SafeTensorsError])
    -> [ExactName: (file: Int, tensor: Int)]
  {
    var locations: [ExactName: (file: Int, tensor: Int)] = [:]
    locations.reserveCapacity(files.reduce(0) { $0 + $1.header.tensors.count })
    for (position, file) in files.enumerated() {
      for (index, tensor) in file.header.tensors.enumerated() {
        if let other = locations.updateValue((position, index), forKey: ExactName(tensor.name)) {
          problems.append(
            SafeTensorsError(
              .duplicateTensor, "is also in \(files[other.file].path)", file: file.path, tensor: tensor.name))
        }
      }
    }
    return locations
  }

  /// One problem for each `.safetensors` file of `directory` that the index does not name but
  /// that holds tensors the index does not list (or that cannot be read, so may hold some).
  private static func unlistedShardProblems(
    directory: String, index: ShardIndex, listed: () -> Set<ExactName>
  ) -> [SafeTensorsError] {
    let named = Set(index.shardFiles)
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
      $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") && !$0.hasPrefix("consolidated") && !named.contains($0)
    }
    guard !names.isEmpty else { return [] }
    let listed = listed()
    return names.sorted(by: utf8Less).compactMap { name -> SafeTensorsError? in
      let path = (directory as NSString).appendingPathComponent(name)
      let file: SafeTensorsFile
      do throws(SafeTensorsError) {
        file = try SafeTensorsFile(path: path)
      } catch {
        var problem = error
        problem.message = "is not named by \(ShardIndex.fileName) and cannot be read: \(error.message)"
        return problem
      }
      let hidden = file.header.tensors.filter { !listed.contains(ExactName($0.name)) }
      guard let first = hidden.first else { return nil }
      return SafeTensorsError(
        .indexMismatch,
        "is not named by \(ShardIndex.fileName), which does not list its \(hidden.count) tensor"
          + "\(hidden.count == 1 ? "" : "s") (this one first): a shard the index leaves out, or a file that is not part of "
          + "the model (move it out of the directory)",
        file: path, tensor: first.name)
    }
  }
}
