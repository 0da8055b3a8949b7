import Foundation
import SafeTensors

/// The pickle fixtures of Tests/Fixtures/pickle (made by Tests/Interop/make_pickle_fixtures.py;
/// see its README and manifest.json).
enum PickleFixtures {
  static let directory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/pickle")

  static func path(_ relative: String) -> String {
    directory.appendingPathComponent(relative).path
  }

  /// The manifest's `files` object.
  static let manifest: [JSONMember] = {
    let bytes = Array(try! Data(contentsOf: directory.appendingPathComponent("manifest.json")))
    return try! JSONParser.parse(bytes)["files"]!.members!
  }()

  /// The manifest's canary path, which no fixture may create.
  static let canary = "/tmp/safeshard-pickle-canary"
}
