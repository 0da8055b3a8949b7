import Crypto
import Foundation
import SafeTensors

/// What a run converts, recorded in the state folder (`state.json`) so that a later run knows
/// whether it may continue: the input files (size, modification time, SHA-256 of the header),
/// the recipe, and a digest of the plan (every shard's name and header, which follow from the
/// recipe and the options that change bytes: shard size and layout).
public struct RunIdentity: Sendable, Equatable {
  /// One input file's fingerprint.
  public struct InputFile: Sendable, Equatable {
    public var name: String
    public var size: Int
    public var modified: String
    public var headerSHA256: String
  }

  /// The input, as given.
  public var input: String
  /// The recipe: a built-in name, or a recipe file's path.
  public var recipe: String
  /// The options that shape the plan, so that `finalize` can make it again.
  public var maxShardSize: Int
  public var layout: ConversionOptions.Layout
  public var workerCount: Int
  public var inputFiles: [InputFile]
  public var planDigest: String

  /// The identity of converting `checkpoint` (at `input`) with `recipe` into `plan`.
  public init(input: String, recipe: String, checkpoint: Checkpoint, plan: ConversionPlan) {
    self.input = input
    self.recipe = recipe
    maxShardSize = plan.options.maxShardSize
    layout = plan.options.layout
    workerCount = plan.options.workerCount
    inputFiles = checkpoint.files.map { file in
      let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
      let modified =
        (attributes?[.modificationDate] as? Date).map { String(format: "%.6f", $0.timeIntervalSince1970) } ?? ""
      var hasher = SHA256()
      hasher.update(data: Data(file.header.encoded()))
      return InputFile(
        name: (file.path as NSString).lastPathComponent, size: file.dataStart + file.header.dataLength,
        modified: modified, headerSHA256: ChecksumList.hex(hasher.finalize()))
    }
    var hasher = SHA256()
    for shard in plan.shards {
      hasher.update(data: Data(shard.fileName.utf8))
      hasher.update(data: Data(shard.headerBytes))
    }
    planDigest = ChecksumList.hex(hasher.finalize())
  }

  /// The identity as the JSON object of `state.json`.
  public var json: JSONValue {
    .object([
      JSONMember("tool", .string("safeshard")), JSONMember("version", .string(BuildInfo.version)),
      JSONMember("input", .string(input)), JSONMember("recipe", .string(recipe)),
      JSONMember("max_shard_size", .number(String(maxShardSize))), JSONMember("layout", .string(layout.rawValue)),
      JSONMember("worker_count", .number(String(workerCount))),
      JSONMember(
        "input_files",
        .array(
          inputFiles.map {
            .object([
              JSONMember("name", .string($0.name)), JSONMember("size", .number(String($0.size))),
              JSONMember("modified", .string($0.modified)), JSONMember("header_sha256", .string($0.headerSHA256)),
            ])
          })),
      JSONMember("plan_sha256", .string(planDigest)),
    ])
  }

  /// Reads an identity from `state.json`; `nil` when it is not one (a missing member, a wrong
  /// type, a number out of range).
  public init?(json: JSONValue) {
    guard json["tool"]?.string == "safeshard", let input = json["input"]?.string, let recipe = json["recipe"]?.string,
      let maxShardSize = json["max_shard_size"]?.uint64.flatMap({ Int(exactly: $0) }),
      let layout = json["layout"]?.string.flatMap(ConversionOptions.Layout.init(rawValue:)),
      let workerCount = json["worker_count"]?.uint64.flatMap({ Int(exactly: $0) }),
      let files = json["input_files"]?.array, let planDigest = json["plan_sha256"]?.string,
      maxShardSize >= 1, workerCount >= 1
    else { return nil }
    var inputFiles: [InputFile] = []
    for file in files {
      guard let name = file["name"]?.string, let size = file["size"]?.uint64.flatMap({ Int(exactly: $0) }),
        let modified = file["modified"]?.string, let header = file["header_sha256"]?.string
      else { return nil }
      inputFiles.append(InputFile(name: name, size: size, modified: modified, headerSHA256: header))
    }
    self.input = input
    self.recipe = recipe
    self.maxShardSize = maxShardSize
    self.layout = layout
    self.workerCount = workerCount
    self.inputFiles = inputFiles
    self.planDigest = planDigest
  }

  /// What differs between this run and the `recorded` one, in words; empty when it may continue.
  public func differences(from recorded: RunIdentity) -> [String] {
    var changes: [String] = []
    let before = Dictionary(recorded.inputFiles.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    let now = Dictionary(inputFiles.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    for name in Set(before.keys).union(now.keys).sorted() {
      switch (before[name], now[name]) {
      case (nil, _): changes.append("input file \(name) is new")
      case (_, nil): changes.append("input file \(name) is gone")
      case (let old?, let new?):
        if old.size != new.size { changes.append("input file \(name) changed size (\(old.size) → \(new.size) bytes)") }
        if old.headerSHA256 != new.headerSHA256 { changes.append("input file \(name) has a different header") }
        if old.modified != new.modified { changes.append("input file \(name) was modified") }
      }
    }
    if recipe != recorded.recipe { changes.append("the recipe is \(recipe), it was \(recorded.recipe)") }
    if workerCount != recorded.workerCount {
      changes.append("--worker-count is \(workerCount), it was \(recorded.workerCount)")
    }
    if planDigest != recorded.planDigest {
      changes.append("the recipe or options give other shards (--max-shard-size, --layout, or the recipe's settings)")
    }
    return changes
  }
}
