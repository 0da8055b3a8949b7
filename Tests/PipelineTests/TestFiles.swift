import Foundation
import Testing

/// Runs `body` with the path of a fresh, empty directory, removed afterwards.
func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
  let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-tests-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: directory) }
  try body(directory.path)
}

/// The size of the file at `path`.
func fileSize(_ path: String) throws -> UInt64 {
  try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64)
}
