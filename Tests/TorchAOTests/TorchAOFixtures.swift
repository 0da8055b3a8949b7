import Foundation
import SafeTensors

/// The golden torchao fixtures in Tests/Fixtures/torchao (see its README).
enum TorchAOFixtures {
  static let directory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/torchao")

  static let names: [String] =
    ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
    .filter { !$0.hasSuffix(".md") }.sorted()

  static func expected(_ name: String) throws -> SafeTensorsFile {
    try SafeTensorsFile(path: directory.appendingPathComponent("\(name)/expected.safetensors").path)
  }

  static func input(_ name: String) throws -> SafeTensorsFile {
    try SafeTensorsFile(path: directory.appendingPathComponent("\(name)/input.safetensors").path)
  }

  /// The fixture's config.json, parsed.
  static func config(_ name: String) throws -> JSONValue {
    try JSONParser.parse(Array(Data(contentsOf: directory.appendingPathComponent("\(name)/config.json"))))
  }
}
