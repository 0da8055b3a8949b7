import Foundation
import SafeTensors
import Testing

@Suite struct CheckpointTests {
  /// A two-shard checkpoint: a, b in shard 1; c in shard 2. `index` replaces the index text.
  static func makeSharded(in directory: URL, index: String? = nil) throws {
    let shards: [(String, [(TensorSpec, [UInt8])])] = [
      (
        "model-00001-of-00002.safetensors",
        [SampleFile.tensor("a", .bf16, [4, 4], seed: 1), SampleFile.tensor("b", .f32, [3], seed: 2)]
      ),
      ("model-00002-of-00002.safetensors", [SampleFile.tensor("c", .f16, [2, 2], seed: 3)]),
    ]
    for (name, tensors) in shards {
      let header = try SafeTensorsHeader(metadata: ["format": "pt"], tensors: tensors.map(\.0))
      try SafeTensorsWriter.write(
        path: directory.appendingPathComponent(name).path, header: header,
        data: Dictionary(uniqueKeysWithValues: tensors.map { ($0.0.name, $0.1) }))
    }
    let text =
      index ?? #"""
        {"metadata": {"total_size": 48}, "weight_map": {"a": "model-00001-of-00002.safetensors",
          "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}}
        """#
    try text.write(to: directory.appendingPathComponent(ShardIndex.fileName), atomically: true, encoding: .utf8)
  }

  @Test func aShardedCheckpointOpensWithEveryTensorInItsShard() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    try Self.makeSharded(in: directory)
    let checkpoint = try Checkpoint(path: directory.path)
    #expect(checkpoint.files.count == 2)
    #expect(checkpoint.tensors.map(\.tensor.name) == ["a", "b", "c"])
    #expect(try checkpoint.file(holding: "c").path.hasSuffix("model-00002-of-00002.safetensors"))
    #expect(checkpoint.index?.metadata == [JSONMember("total_size", .number("48"))])
    var generator = SeededBytes(seed: 3)
    let c = try checkpoint.file(holding: "c")
    #expect(try c.bytes(of: c.tensor(named: "c")) == generator.bytes(8))
    #expect(Checkpoint.problems(at: directory.path).isEmpty)
  }

  @Test func aNameLookedUpAfterAPositionIsFoundWhereverItIs() throws {
    // a, b in shard 1 and c in shard 2 are at positions 0, 1, 2: looked up after every position,
    // each name is found where it is (the next tensor, across a shard boundary, or elsewhere
    // through the table), and a name that is not stored is not found.
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    try Self.makeSharded(in: directory)
    let checkpoint = try Checkpoint(path: directory.path)
    for (position, name) in ["a", "b", "c"].enumerated() {
      for after in -1..<3 {
        let found = try #require(checkpoint.location(of: name, after: after))
        #expect(found.position == position && found.tensor.name == name)
        #expect(try found.file.path == checkpoint.file(holding: name).path)
      }
    }
    #expect(checkpoint.location(of: "d", after: 1) == nil && checkpoint.location(of: "d", after: 2) == nil)
  }

  @Test func aSingleFileCheckpointOpensFromTheDirectoryOrTheFile() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let sample = SampleFile.all[0]
    let path = directory.appendingPathComponent("model.safetensors").path
    try SafeTensorsWriter.write(path: path, header: sample.header(), data: sample.data())
    #expect(try Checkpoint(path: directory.path).tensors.count == sample.tensors.count)
    #expect(try Checkpoint(path: path).tensors.count == sample.tensors.count)
  }

  /// A bad index, and the rules the problems must name.
  struct BadIndex: CustomTestStringConvertible, Sendable {
    var name: String
    var index: String
    var codes: [SafeTensorsError.Code]
    var testDescription: String { name }
  }

  static let one = "model-00001-of-00002.safetensors"
  static let two = "model-00002-of-00002.safetensors"

  static let badIndexes: [BadIndex] = [
    BadIndex(
      name: "parent traversal", index: #"{"weight_map": {"a": "../outside.safetensors"}}"#, codes: [.unsafeShardName]),
    BadIndex(name: "absolute path", index: #"{"weight_map": {"a": "/etc/passwd"}}"#, codes: [.unsafeShardName]),
    BadIndex(name: "backslash", index: #"{"weight_map": {"a": "sub\\x.safetensors"}}"#, codes: [.unsafeShardName]),
    BadIndex(name: "subdirectory", index: #"{"weight_map": {"a": "sub/x.safetensors"}}"#, codes: [.unsafeShardName]),
    BadIndex(name: "empty name", index: #"{"weight_map": {"a": ""}}"#, codes: [.unsafeShardName]),
    BadIndex(name: "not JSON", index: "{weight_map", codes: [.indexFormat]),
    BadIndex(name: "no weight_map", index: #"{"metadata": {}}"#, codes: [.indexFormat]),
    BadIndex(name: "weight_map value not a string", index: #"{"weight_map": {"a": 1}}"#, codes: [.indexFormat]),
    BadIndex(name: "metadata not an object", index: #"{"metadata": 1, "weight_map": {}}"#, codes: [.indexFormat]),
    BadIndex(name: "duplicate key", index: #"{"weight_map": {"a": "x", "a": "y"}}"#, codes: [.indexFormat]),
    BadIndex(
      name: "missing shard",
      index: #"{"weight_map": {"a": "\#(one)", "b": "\#(one)", "c": "\#(two)", "d": "model-00003.safetensors"}}"#,
      codes: [.missingShard]),
    BadIndex(
      name: "tensor in the wrong shard", index: #"{"weight_map": {"a": "\#(two)", "b": "\#(one)", "c": "\#(two)"}}"#,
      codes: [.indexMismatch]),
    BadIndex(
      name: "tensor not listed", index: #"{"weight_map": {"a": "\#(one)", "c": "\#(two)"}}"#, codes: [.indexMismatch]),
    BadIndex(
      name: "listed tensor in no shard",
      index: #"{"weight_map": {"a": "\#(one)", "b": "\#(one)", "c": "\#(two)", "z": "\#(two)"}}"#,
      codes: [.indexMismatch]),
    // Both shards hold tensors that an empty index hides.
    BadIndex(
      name: "empty weight_map", index: #"{"weight_map": {}}"#, codes: [.indexFormat, .indexMismatch, .indexMismatch]),
    BadIndex(
      name: "a shard the index leaves out", index: #"{"weight_map": {"a": "\#(one)", "b": "\#(one)"}}"#,
      codes: [.indexMismatch]),
  ]

  @Test(arguments: badIndexes)
  func aBadIndexIsRefusedWithItsRule(_ bad: BadIndex) throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    try Self.makeSharded(in: directory, index: bad.index)
    #expect(Checkpoint.problems(at: directory.path).map(\.code) == bad.codes)
    let error = #expect(throws: SafeTensorsError.self) { try Checkpoint(path: directory.path) }
    #expect(error?.code == bad.codes.first)
    #expect(error.map { "\($0)".contains(directory.path) } == true)
  }

  @Test func aTraversingShardNameIsRefusedEvenWhenTheFileItNamesIsValid() throws {
    let parent = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(parent) }
    let directory = parent.appendingPathComponent("model")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    try Self.makeSharded(in: directory)
    try FileManager.default.copyItem(
      at: directory.appendingPathComponent(Self.one), to: parent.appendingPathComponent("outside.safetensors"))
    try #"{"weight_map": {"a": "../outside.safetensors", "b": "../outside.safetensors"}}"#.write(
      to: directory.appendingPathComponent(ShardIndex.fileName), atomically: true, encoding: .utf8)
    let problems = Checkpoint.problems(at: directory.path)
    #expect(problems.map(\.code) == [.unsafeShardName])
    #expect(problems.first?.tensor == "a")
  }

  @Test func theSameTensorInTwoShardsIsRefused() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    try Self.makeSharded(in: directory)
    let (spec, data) = SampleFile.tensor("a", .bf16, [4, 4], seed: 1)
    try SafeTensorsWriter.write(
      path: directory.appendingPathComponent(Self.two).path,
      header: SafeTensorsHeader(metadata: nil, tensors: [spec, TensorSpec(name: "c", dtype: .f16, shape: [2, 2])]),
      data: ["a": data, "c": [UInt8](repeating: 0, count: 8)])
    let problems = Checkpoint.problems(at: directory.path)
    #expect(problems.map(\.code) == [.duplicateTensor])
    #expect(problems.first?.tensor == "a")
  }

  @Test func aShardTheIndexLeavesOutIsNamedWithItsFirstHiddenTensor() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    try Self.makeSharded(in: directory, index: #"{"weight_map": {"a": "\#(Self.one)", "b": "\#(Self.one)"}}"#)
    let problem = try #require(Checkpoint.problems(at: directory.path).first)
    #expect(problem.file == directory.appendingPathComponent(Self.two).path)
    #expect(problem.tensor == "c")
    #expect(problem.message.contains("not named by model.safetensors.index.json"))
  }

  @Test func anUnlistedFileWhoseTensorsTheIndexListsOrMistralsConsolidatedFileIsAccepted() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    try Self.makeSharded(in: directory)
    // A copy of shard 1 under another name holds only listed tensors; consolidated.safetensors
    // (Mistral's own format beside the transformers shards) holds other names.
    try FileManager.default.copyItem(
      at: directory.appendingPathComponent(Self.one), to: directory.appendingPathComponent("backup.safetensors"))
    let (spec, data) = SampleFile.tensor("layers.0.attention.wq.weight", .bf16, [4, 4], seed: 4)
    try SafeTensorsWriter.write(
      path: directory.appendingPathComponent("consolidated.safetensors").path,
      header: SafeTensorsHeader(metadata: nil, tensors: [spec]), data: [spec.name: data])
    #expect(Checkpoint.problems(at: directory.path).isEmpty)
    #expect(try Checkpoint(path: directory.path).tensors.map(\.tensor.name) == ["a", "b", "c"])
  }

  @Test func aFIFOInPlaceOfAShardIsRefusedWithoutBlocking() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    try Self.makeSharded(in: directory)
    let shard = directory.appendingPathComponent(Self.two).path
    try FileManager.default.removeItem(atPath: shard)
    #expect(mkfifo(shard, 0o644) == 0)
    // Opening a FIFO for reading blocks until a writer comes; the check must not.
    let problems = Checkpoint.problems(at: directory.path)
    #expect(problems.first?.code == .notRegularFile)
    #expect(problems.first?.file == shard)
    let single = directory.appendingPathComponent("single.safetensors").path
    #expect(mkfifo(single, 0o644) == 0)
    #expect(Checkpoint.problems(at: single).map(\.code) == [.notRegularFile])
  }

  @Test func aBadShardIsReportedAlongsideTheIndexProblems() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    try Self.makeSharded(in: directory)
    let url = directory.appendingPathComponent(Self.two)
    try TestFiles.write(Array(try TestFiles.read(url).dropLast()), to: url)
    let problems = Checkpoint.problems(at: directory.path)
    #expect(problems.map(\.code) == [.incompleteBuffer])
    #expect(problems.first?.file == url.path)
  }

  @Test func aDirectoryWithoutAModelIsNotACheckpoint() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    #expect(Checkpoint.problems(at: directory.path).map(\.code) == [.notACheckpoint])
    #expect(Checkpoint.problems(at: directory.appendingPathComponent("nothing").path).map(\.code) == [.io])
  }
}
