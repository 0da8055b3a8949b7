import Foundation
import SafeTensors

/// Where the test data lives, and scratch space for the tests.
enum TestFiles {
  /// `Tests/Fixtures`, found from this source file so it works from any working directory.
  static let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

  /// A new empty directory, removed by the caller with `cleanUp`.
  static func scratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("safeshard-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  static func cleanUp(_ url: URL) {
    try? FileManager.default.removeItem(at: url)
  }

  static func read(_ url: URL) throws -> [UInt8] {
    Array(try Data(contentsOf: url))
  }

  static func write(_ bytes: [UInt8], to url: URL) throws {
    try Data(bytes).write(to: url)
  }
}

/// A deterministic byte generator (xorshift64*), so test data is the same on every run.
struct SeededBytes {
  private var state: UInt64

  init(seed: UInt64) {
    state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  }

  mutating func next() -> UInt64 {
    state ^= state >> 12
    state ^= state << 25
    state ^= state >> 27
    return state &* 0x2545_F491_4F6C_DD1D
  }

  mutating func bytes(_ count: Int) -> [UInt8] {
    (0..<count).map { _ in UInt8(truncatingIfNeeded: next() >> 32) }
  }

  mutating func below(_ bound: Int) -> Int {
    Int(next() % UInt64(bound))
  }
}
