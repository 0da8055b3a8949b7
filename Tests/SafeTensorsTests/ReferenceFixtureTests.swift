import Foundation
import SafeTensors
import Testing

/// Files written by the safetensors reference implementation (Tests/Interop/make_python_fixtures.py).
@Suite struct ReferenceFixtureTests {
  static let directory = TestFiles.fixtures.appendingPathComponent("python")

  static var names: [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
      .filter { $0.hasSuffix(".safetensors") }.map { String($0.dropLast(".safetensors".count)) }.sorted()
  }

  @Test func theReferenceFixturesArePresent() {
    #expect(Self.names == ["empty_file", "every_dtype", "no_metadata", "scalars_and_empty", "unicode_metadata"])
  }

  @Test(arguments: names)
  func aReferenceWrittenFileReadsExactlyAsItsManifestSays(name: String) throws {
    let file = try SafeTensorsFile(path: Self.directory.appendingPathComponent(name + ".safetensors").path)
    let expected = try Manifest(json: TestFiles.read(Self.directory.appendingPathComponent(name + ".json")))
    #expect(try Manifest(reading: file) == expected)
  }

  @Test func everyDTypeOfTheReferenceIsRead() throws {
    let file = try SafeTensorsFile(path: Self.directory.appendingPathComponent("every_dtype.safetensors").path)
    let found = Set(file.header.tensors.map(\.dtype))
    // The reference writer cannot write the two F6 types; the Swift round trip covers them.
    #expect(found == Set(DType.allCases).subtracting([.f6e2m3, .f6e3m2]))
    let bf16 = try file.tensor(named: "t_bf16")
    #expect(bf16.shape == [3, 4] && bf16.byteCount == 24)
  }

  @Test func rewritingAReferenceFileInReferenceOrderGivesTheSameTensorBytes() throws {
    let source = try SafeTensorsFile(path: Self.directory.appendingPathComponent("every_dtype.safetensors").path)
    let header = try SafeTensorsHeader(
      metadata: source.header.metadata,
      tensors: source.header.tensors.map { TensorSpec(name: $0.name, dtype: $0.dtype, shape: $0.shape) },
      order: .reference)
    // The reference writer laid the file out in the same order.
    #expect(header.tensors == source.header.tensors)
  }
}
