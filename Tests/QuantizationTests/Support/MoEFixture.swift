import Foundation
import SafeTensors
import Testing

/// One architecture's MoE golden fixture (`Tests/Fixtures/moe/ARCH`, see its README): the raw
/// bf16 model and the manifests of what transformers + torchao write for each recipe.
struct MoEFixture {
  static let directory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/moe")

  /// A stored tensor of a manifest: its safetensors dtype, shape and the SHA-256 of its bytes.
  struct StoredTensor: Equatable {
    var dtype: String
    var shape: [Int]
    var sha256: String
  }

  let arch: String
  let raw: SafeTensorsFile

  init(_ arch: String) throws {
    self.arch = arch
    raw = try SafeTensorsFile(path: Self.directory.appendingPathComponent("\(arch)/raw/model.safetensors").path)
  }

  /// The parsed manifest of `recipe`.
  func manifest(_ recipe: String) throws -> JSONValue {
    try JSONParser.parse(Array(Data(contentsOf: Self.directory.appendingPathComponent("\(arch)/\(recipe).json"))))
  }

  /// The shape and raw bytes of `tensor` in the raw model.
  func input(_ tensor: String) throws -> (shape: [Int], bytes: [UInt8]) {
    let info = try raw.tensor(named: tensor)
    return (info.shape, try raw.bytes(of: info))
  }

  /// The manifest's entry for the stored tensor `key` of `recipe`.
  func stored(_ key: String, recipe: String) throws -> StoredTensor {
    let entry = try #require(try manifest(recipe)["tensors"]?[key], "\(key) is not in \(arch)/\(recipe)")
    return StoredTensor(
      dtype: try #require(entry["dtype"]?.string),
      shape: try #require(entry["shape"]?.array).map { Int($0.uint64!) },
      sha256: try #require(entry["sha256"]?.string))
  }
}
