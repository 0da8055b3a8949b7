import Foundation
import SafeTensors

/// The interop manifest that travels beside a safetensors file (`NAME.json` beside
/// `NAME.safetensors`; Tests/Interop/manifest.py describes it): metadata and every tensor's
/// name, dtype, shape and bytes, in data order.
struct Manifest: Equatable {
  struct Tensor: Equatable {
    var name: String
    var dtype: String
    var shape: [Int]
    var data: [UInt8]
  }

  var metadata: [String: String]?
  var tensors: [Tensor]

  /// What `file` holds, read through the library.
  init(reading file: SafeTensorsFile) throws {
    metadata = file.header.metadata
    tensors = try file.header.tensors.map {
      Tensor(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, data: try file.bytes(of: $0))
    }
  }

  init(metadata: [String: String]?, tensors: [Tensor]) {
    self.metadata = metadata
    self.tensors = tensors
  }

  init(json bytes: [UInt8]) throws {
    let root = try JSONParser.parse(bytes)
    if let members = root["metadata"]?.members {
      metadata = Dictionary(uniqueKeysWithValues: members.map { ($0.key, $0.value.string!) })
    }
    tensors = (root["tensors"]?.array ?? []).map { tensor in
      Tensor(
        name: tensor["name"]!.string!, dtype: tensor["dtype"]!.string!,
        shape: tensor["shape"]!.array!.map { Int($0.uint64!) }, data: Self.bytes(hex: tensor["data_hex"]!.string!))
    }
  }

  func json() -> String {
    let metadataValue: JSONValue =
      metadata.map { .object($0.sorted { $0.key < $1.key }.map { JSONMember($0.key, .string($0.value)) }) } ?? .null
    let tensorValues: [JSONValue] = tensors.map { tensor in
      .object([
        JSONMember("name", .string(tensor.name)), JSONMember("dtype", .string(tensor.dtype)),
        JSONMember("shape", .array(tensor.shape.map { .number(String($0)) })),
        JSONMember("data_hex", .string(tensor.data.map { String(format: "%02x", $0) }.joined())),
      ])
    }
    return JSONWriter.string(
      .object([JSONMember("metadata", metadataValue), JSONMember("tensors", .array(tensorValues))]))
  }

  static func bytes(hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count, by: 2).map {
      UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)!
    }
  }
}
