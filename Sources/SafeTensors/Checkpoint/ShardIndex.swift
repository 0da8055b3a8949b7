/// A `model.safetensors.index.json`: which shard file holds each tensor of a sharded checkpoint.
///
/// Decoding checks the shape of the file and that every shard name is a plain file name, so a
/// name can never lead outside the checkpoint's directory.
public struct ShardIndex: Sendable, Equatable {
  /// The file name Hugging Face uses for the index.
  public static let fileName = "model.safetensors.index.json"

  /// The `metadata` object (`total_size`, and whatever else the writer put there).
  public var metadata: [JSONMember]
  /// Tensor name → shard file name, in the order the index lists them.
  public var weightMap: [(tensor: String, file: String)]

  public static func == (lhs: ShardIndex, rhs: ShardIndex) -> Bool {
    JSONValue.object(lhs.metadata) == .object(rhs.metadata)
      && lhs.weightMap.elementsEqual(rhs.weightMap) { $0.tensor == $1.tensor && $0.file == $1.file }
  }

  /// Creates an index.
  public init(metadata: [JSONMember], weightMap: [(tensor: String, file: String)]) {
    self.metadata = metadata
    self.weightMap = weightMap
  }

  /// The file's text as transformers writes it: `json.dumps(index, indent=2, sort_keys=True)`
  /// and a newline.
  public func encoded() -> String {
    let index = JSONValue.object([
      JSONMember("metadata", .object(metadata)),
      JSONMember("weight_map", .object(weightMap.map { JSONMember($0.tensor, .string($0.file)) })),
    ])
    return JSONWriter.string(index.sortingKeys(), style: .pythonIndented) + "\n"
  }

  /// The shard file names, each once, in order of first mention.
  public var shardFiles: [String] {
    var seen = Set<String>()
    var files: [String] = []
    var last: String?
    // The entries list each shard in runs: only a change of name is looked up.
    for (_, file) in weightMap where last.map({ ExactName($0) != ExactName(file) }) ?? true {
      last = file
      if seen.insert(file).inserted { files.append(file) }
    }
    return files
  }

  /// Decodes an index from its JSON bytes.
  ///
  /// - Throws: `indexFormat` when the JSON or its structure is wrong, `unsafeShardName` when a
  ///   shard name is empty, absolute, or contains `/`, `\`, `..` or NUL.
  public static func decode(_ bytes: [UInt8], path: String) throws(SafeTensorsError) -> ShardIndex {
    let scan: IndexScan?
    do {
      scan = try bytes.withUnsafeBufferPointer { input in
        Result { () throws(JSONParser.Failure) in try IndexScan.scan(input) }
      }.get()
    } catch {
      throw SafeTensorsError(.indexFormat, "not valid JSON: \(error)", file: path)
    }
    guard let scan else { throw SafeTensorsError(.indexFormat, "not a JSON object", file: path) }
    guard let map = scan.weightMap else {
      throw SafeTensorsError(.indexFormat, "has no \"weight_map\" object", file: path)
    }
    var metadata: [JSONMember] = []
    if let value = scan.members.first(where: { $0.key == "metadata" })?.value {
      guard let members = value.members else {
        throw SafeTensorsError(.indexFormat, "\"metadata\" is not an object", file: path)
      }
      metadata = members
    }
    var weightMap: [(tensor: String, file: String)] = []
    weightMap.reserveCapacity(map.count)
    // A checkpoint has a few shard names for many tensors, listed in runs: a name is checked when
    // it differs from the one before (the check searches with Foundation, which a 300 000-tensor
    // index would call a million times), and the entries of a run share one string.
    var checked: String?
    for (tensor, file) in map {
      guard let file else {
        throw SafeTensorsError(.indexFormat, "weight_map value is not a string", file: path, tensor: tensor)
      }
      if checked.map({ ExactName($0) != ExactName(file) }) ?? true {
        if let problem = unsafeNameProblem(file) {
          throw SafeTensorsError(.unsafeShardName, "shard name \"\(file)\" \(problem)", file: path, tensor: tensor)
        }
        checked = file
      }
      weightMap.append((tensor, checked!))
    }
    return ShardIndex(metadata: metadata, weightMap: weightMap)
  }

  /// Why `name` is not a plain file name inside the checkpoint's directory, or `nil` if it is.
  static func unsafeNameProblem(_ name: String) -> String? {
    if name.isEmpty { return "is empty" }
    if name == "." { return "is a directory reference" }
    if name.contains("..") { return "contains \"..\"" }
    if name.hasPrefix("/") { return "is an absolute path" }
    if name.contains("/") || name.contains("\\") { return "has a path separator" }
    if name.utf8.contains(0) { return "contains a NUL byte" }
    return nil
  }
}
