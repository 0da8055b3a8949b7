import Foundation
import SafeTensors

/// A small checkpoint held in memory, to edit and write out as one or more shards.
struct EditableCheckpoint {
  var metadata: [String: String]
  var tensors: [(spec: TensorSpec, data: [UInt8])]

  init(_ file: SafeTensorsFile) throws {
    metadata = file.header.metadata ?? [:]
    tensors = try file.header.tensors.map {
      (TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape), try file.bytes(of: $0))
    }
  }

  mutating func remove(_ name: String) {
    tensors.removeAll { $0.spec.name == name }
  }

  mutating func replace(_ name: String, dtype: DType? = nil, shape: [Int]? = nil) {
    let index = tensors.firstIndex { $0.spec.name == name }!
    var spec = tensors[index].spec
    spec.dtype = dtype ?? spec.dtype
    spec.shape = shape ?? spec.shape
    tensors[index] = (spec, [UInt8](repeating: 0, count: try! spec.byteCount()))
  }

  /// Writes the tensors into `shards` files (round robin) with an index, or one
  /// `model.safetensors`; `metadataOf` gives each shard's metadata (all of it by default).
  func write(to directory: URL, shards: Int = 1, metadataOf: (Int) -> [String: String]? = { _ in nil }) throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var weightMap: [String] = []
    for shard in 0..<shards {
      let mine = tensors.enumerated().filter { $0.offset % shards == shard }.map(\.element)
      let name = shards == 1 ? "model.safetensors" : "model-\(shard + 1)-of-\(shards).safetensors"
      let header = try SafeTensorsHeader(metadata: metadataOf(shard) ?? metadata, tensors: mine.map(\.spec))
      try SafeTensorsWriter.write(
        path: directory.appendingPathComponent(name).path, header: header,
        data: Dictionary(uniqueKeysWithValues: mine.map { ($0.spec.name, $0.data) }))
      weightMap += mine.map { #""\#($0.spec.name)": "\#(name)""# }
    }
    if shards > 1 {
      try #"{"metadata": {}, "weight_map": {\#(weightMap.joined(separator: ", "))}}"#.write(
        to: directory.appendingPathComponent(ShardIndex.fileName), atomically: true, encoding: .utf8)
    }
  }
}
