import Crypto
import Foundation
import Pipeline
import SafeTensors
import Testing

/// Tiny Mixture-of-Experts models of six architectures (Tests/Fixtures/moe/<arch>/raw, made by
/// transformers 5.24) converted with the plain and the `-experts` recipes: every stored tensor
/// (dtype, shape, SHA-256 of its bytes), every `__metadata__` entry (`tensor_names` as a set:
/// its order is free) and the `quantization_config` of `config.json` equal what transformers +
/// torchao 0.18 write for the same config (the golden manifests `<arch>/<recipe>.json`, see
/// Tests/Fixtures/moe/README.md) — once in one shard, once in shards of at most 64 KB with a
/// 512 KiB budget, so that fused experts are gathered from many input tensors in chunks and
/// their parts split across shards.
@Suite struct MoEConversionTests {
  static let fixtures = ConversionHarness.repository.appendingPathComponent("Tests/Fixtures/moe")

  /// Every (architecture, recipe) golden, sorted.
  static let cases: [String] = {
    let manager = FileManager.default
    return ((try? manager.contentsOfDirectory(atPath: fixtures.path)) ?? []).sorted().flatMap { arch in
      ((try? manager.contentsOfDirectory(atPath: fixtures.appendingPathComponent(arch).path)) ?? [])
        .filter { $0.hasSuffix(".json") }.sorted().map { "\(arch)/\($0.dropLast(".json".count))" }
    }
  }()

  @Test func everyGoldenIsHere() {
    #expect(Self.cases.count == 44)
  }

  @Test(arguments: cases, [false, true])
  func convertingTheRawModelGivesWhatTransformersWrites(name: String, sharded: Bool) async throws {
    let golden = try JSONParser.parse(Array(Data(contentsOf: Self.fixtures.appendingPathComponent(name + ".json"))))
    let arch = String(name.split(separator: "/")[0])
    let recipe = String(name.split(separator: "/")[1])
    let scratch = try ConversionHarness.scratch()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let output = scratch.appendingPathComponent("out").path
    try await ConversionHarness.convert(
      Self.fixtures.appendingPathComponent("\(arch)/raw").path, to: output, recipe: recipe
    ) { options in
      if sharded {
        options.maxShardSize = 64_000
        // Chunks of 512 KiB / 12 = 43,690 bytes: 170 rows of 128 bf16 values, so most chunks
        // of a fused parameter span two input tensors (experts of 128 or 256 rows).
        options.memory = 512 << 10
        options.jobs = 2
      }
    }

    let result = try Checkpoint(path: output)
    #expect(sharded ? result.files.count > 1 : result.files.count == 1)
    let tensors = try #require(golden["tensors"]?.members)
    let stored = Dictionary(uniqueKeysWithValues: result.tensors.map { ($0.tensor.name, $0) })
    #expect(Set(stored.keys) == Set(tensors.map(\.key)))
    for member in tensors {
      guard let (info, file) = stored[member.key] else { continue }
      #expect(.string(info.dtype.rawValue) == member.value["dtype"], "\(member.key)")
      #expect(info.shape.map { UInt64($0) } == member.value["shape"]?.array?.compactMap(\.uint64), "\(member.key)")
      let digest = SHA256.hash(data: try file.bytes(of: info)).map { String(format: "%02x", $0) }.joined()
      #expect(.string(digest) == member.value["sha256"], "\(member.key) differs from transformers' bytes")
    }

    let metadata = try #require(golden["metadata"]?.members)
    for file in result.files {
      let written = try #require(file.header.metadata)
      #expect(Set(written.keys) == Set(metadata.map(\.key)), "\(file.path)")
      for member in metadata {
        guard let text = written[member.key] else { continue }
        if member.key == "format" {
          #expect(.string(text) == member.value)
        } else if member.key == "tensor_names" {
          let names = try JSONParser.parse(text).array ?? []
          #expect(names.count == member.value.array?.count && Set(names) == Set(member.value.array ?? []))
        } else {
          #expect(try JSONParser.parse(text) == member.value, "metadata \(member.key): \(text)")
        }
      }
    }
    let config = try JSONParser.parse(
      Array(Data(contentsOf: URL(fileURLWithPath: output).appendingPathComponent("config.json"))))
    #expect(config["quantization_config"] == golden["quantization_config"])
  }
}
