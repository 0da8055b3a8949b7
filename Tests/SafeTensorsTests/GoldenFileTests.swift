import Foundation
import SafeTensors
import Testing

/// Our writer's bytes for the sample files are committed under Tests/Fixtures/golden; any change
/// to what the writer produces shows up here. Regenerate (after checking the change is wanted)
/// with `SAFESHARD_UPDATE_GOLDEN=1 swift test --filter GoldenFileTests`.
@Suite struct GoldenFileTests {
  static let directory = TestFiles.fixtures.appendingPathComponent("golden")

  @Test(arguments: SampleFile.all.map(\.name))
  func theWriterStillProducesTheCommittedBytes(name: String) throws {
    let sample = SampleFile.all.first { $0.name == name }!
    let scratch = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(scratch) }
    let written = scratch.appendingPathComponent(name + ".safetensors")
    try SafeTensorsWriter.write(path: written.path, header: sample.header(), data: sample.data())
    let golden = Self.directory.appendingPathComponent(name + ".safetensors")
    if ProcessInfo.processInfo.environment["SAFESHARD_UPDATE_GOLDEN"] == "1" {
      try FileManager.default.createDirectory(at: Self.directory, withIntermediateDirectories: true)
      try? FileManager.default.removeItem(at: golden)
      try FileManager.default.copyItem(at: written, to: golden)
    }
    #expect(try TestFiles.read(written) == TestFiles.read(golden))
  }
}
