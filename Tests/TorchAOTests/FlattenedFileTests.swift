import Foundation
import Quantization
import SafeTensors
import Testing
import TorchAO

/// Whole files: each fixture's input quantized with its config and written in torchao's
/// flattened layout holds exactly torchao's tensors and metadata. With `SAFESHARD_TORCHAO_OUT`
/// set, the files are left in `$SAFESHARD_TORCHAO_OUT/<fixture>/output.safetensors` for
/// Tests/Interop/check_torchao_fixtures.sh, which checks them with torchao itself.
@Suite struct FlattenedFileTests {
  /// Writes `input` quantized with `config` in torchao's layout; tensors in the reference order.
  static func writeFlattened(_ input: SafeTensorsFile, config: TorchAOConfig, to path: String) throws {
    var entries: [FlattenedEntry] = []
    var data: [String: [UInt8]] = [:]
    for tensor in input.header.tensors.sorted(by: { $0.name < $1.name }) {
      let bytes = try input.bytes(of: tensor)
      let source = FloatFormat(rawValue: tensor.dtype.rawValue)
      guard let source, tensor.shape.count >= 2, try config.decision(shape: tensor.shape, source: source) == .quantize
      else {
        entries.append(.plain(tensor.name, dtype: tensor.dtype, shape: tensor.shape))
        data[tensor.name] = bytes
        continue
      }
      let entry = try config.flattenedEntry(name: tensor.name, shape: tensor.shape, source: source)
      let parts = try bytes.withUnsafeBytes { try config.scheme(source: source).quantize($0, shape: tensor.shape) }
      for stored in entry.stored { data[stored.spec.name] = parts[stored.part!] }
      entries.append(entry)
    }
    let metadata = TorchAOMetadata(entries: entries.map { ($0.name, $0.description) })
    let header = try SafeTensorsHeader(
      metadata: metadata.encoded(), tensors: entries.flatMap { $0.stored.map(\.spec) }, order: .reference)
    try SafeTensorsWriter.write(path: path, header: header, data: data)
  }

  @Test(arguments: TorchAOFixtures.names)
  func aQuantizedFileHoldsTorchAOsTensorsAndMetadata(fixture: String) throws {
    let config = try TorchAOConfig(configDict: try #require(TorchAOFixtures.config(fixture)["torchao_config"]))
    let directory: URL
    if let out = ProcessInfo.processInfo.environment["SAFESHARD_TORCHAO_OUT"] {
      directory = URL(fileURLWithPath: out).appendingPathComponent(fixture)
    } else {
      directory = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-flat-\(UUID().uuidString)")
    }
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer {
      if ProcessInfo.processInfo.environment["SAFESHARD_TORCHAO_OUT"] == nil {
        try? FileManager.default.removeItem(at: directory)
      }
    }
    let path = directory.appendingPathComponent("output.safetensors").path
    // experts.* are quantized through FqnToConfig in the fixtures; other inputs by the config's
    // own selection. The fixture's outcome says which; follow it.
    let outcome = try #require(TorchAOFixtures.config(fixture)["outcome"]?.members)
    let input = try TorchAOFixtures.input(fixture)
    try Self.writeFlattened(input, config: config, to: path)

    let ours = try SafeTensorsFile(path: path)
    let expected = try TorchAOFixtures.expected(fixture)
    #expect(Set(ours.header.tensors.map(\.name)) == Set(expected.header.tensors.map(\.name)))
    for tensor in expected.header.tensors {
      let mine = try ours.tensor(named: tensor.name)
      #expect(mine.dtype == tensor.dtype && mine.shape == tensor.shape, "\(tensor.name)")
      #expect(try ours.bytes(of: mine) == expected.bytes(of: tensor), "\(tensor.name)")
    }
    // The same layout as torchao's writer: dtype descending, then name.
    #expect(ours.header.tensors.map(\.name) == expected.header.tensors.map(\.name))
    // Metadata equal as parsed JSON (torchao's key order is random per run; ours is sorted).
    let mineMetadata = try #require(ours.header.metadata)
    let theirs = try #require(expected.header.metadata)
    #expect(mineMetadata.keys.sorted() == theirs.keys.sorted())
    for (key, value) in theirs where key != "tensor_names" {
      #expect(try JSONParser.parse(mineMetadata[key]!) == JSONParser.parse(value), "\(key)")
    }
    #expect(
      Set(try JSONParser.parse(mineMetadata["tensor_names"]!).array ?? [])
        == Set(try JSONParser.parse(theirs["tensor_names"]!).array ?? []))
    #expect(outcome.count == (try TorchAOMetadata(decoding: mineMetadata)).entries.count)
  }
}
