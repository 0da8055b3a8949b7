import Foundation
import SafeTensors
import Testing

@Suite struct TensorReadTests {
  /// Writes `tensors` to `t.safetensors` in `directory`; returns its path.
  static func write(_ tensors: [(TensorSpec, [UInt8])], in directory: URL) throws -> String {
    let path = directory.appendingPathComponent("t.safetensors").path
    try SafeTensorsWriter.write(
      path: path, header: SafeTensorsHeader(metadata: nil, tensors: tensors.map(\.0)),
      data: Dictionary(uniqueKeysWithValues: tensors.map { ($0.0.name, $0.1) }))
    return path
  }

  @Test(arguments: [1, 7, 64, 4096, 1 << 20])
  func readingInChunksGivesTheTensorsBytesInOrder(chunkSize: Int) throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let tensors = [SampleFile.tensor("x", .bf16, [33, 31], seed: 9), SampleFile.tensor("y", .u8, [5], seed: 10)]
    let path = try Self.write(tensors, in: directory)
    let file = try SafeTensorsFile(path: path)
    for (spec, data) in tensors {
      var collected: [UInt8] = []
      var pieces = 0
      try file.forEachChunk(of: file.tensor(named: spec.name), chunkSize: chunkSize) { piece in
        #expect(piece.count <= chunkSize)
        collected += piece
        pieces += 1
      }
      #expect(collected == data)
      #expect(pieces == (data.count + chunkSize - 1) / chunkSize)
    }
  }

  @Test func aRangeOutsideTheTensorIsRefused() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let (spec, data) = SampleFile.tensor("x", .f32, [4], seed: 1)
    let path = try Self.write([(spec, data)], in: directory)
    let file = try SafeTensorsFile(path: path)
    let tensor = try file.tensor(named: "x")
    var buffer = [UInt8](repeating: 0, count: 8)
    try buffer.withUnsafeMutableBytes { try file.read(tensor, at: 8, into: $0) }
    #expect(buffer == Array(data[8..<16]))
    let error = #expect(throws: SafeTensorsError.self) {
      try buffer.withUnsafeMutableBytes { try file.read(tensor, at: 12, into: $0) }
    }
    #expect(error?.code == .invalidArgument)
    #expect(throws: SafeTensorsError.self) { try file.tensor(named: "nope") }
  }

  @Test func aFileThatShrinksAfterOpeningGivesAnIOErrorNotGarbage() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let (spec, data) = SampleFile.tensor("x", .f32, [1024], seed: 1)
    let path = try Self.write([(spec, data)], in: directory)
    let file = try SafeTensorsFile(path: path)
    #expect(truncate(path, 100) == 0)
    let error = #expect(throws: SafeTensorsError.self) { try file.bytes(of: file.tensor(named: "x")) }
    #expect(error?.code == .io)
  }

  @Test(
    .enabled(if: MappedTensorBytes.isSupported),
    arguments: [(0, 1), (3, 5000), (4093, 8), (0, 131_072), (100_000, 31_072)])
  func mappedBytesAreTheBytesARead(offset: Int, count: Int) throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let tensors = [SampleFile.tensor("a", .u8, [13], seed: 3), SampleFile.tensor("x", .f32, [256, 128], seed: 4)]
    let path = try Self.write(tensors, in: directory)
    let file = try SafeTensorsFile(path: path)
    #expect(file.isMappable)
    let mapped = try #require(try file.map(file.tensor(named: "x"), at: offset, count: count))
    #expect(Array(mapped.bytes) == Array(tensors[1].1[offset..<offset + count]))
    try mapped.check()
    let error = #expect(throws: SafeTensorsError.self) { try file.map(file.tensor(named: "x"), at: 1, count: 131_072) }
    #expect(error?.code == .invalidArgument)
  }

  @Test(.enabled(if: MappedTensorBytes.isSupported))
  func mappedBytesOfAFileThatShrinksReadAsZerosAndTheCheckSaysSo() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let (spec, data) = SampleFile.tensor("x", .f32, [64, 1024], seed: 5)
    let path = try Self.write([(spec, data)], in: directory)
    let file = try SafeTensorsFile(path: path)
    let tensor = try file.tensor(named: "x")
    let mapped = try #require(try file.map(tensor, at: 0, count: data.count))
    let kept = file.dataStart + 100_000
    #expect(truncate(path, off_t(kept)) == 0)
    // Without the guard, reading past the new end would end the process with SIGBUS.
    let bytes = Array(mapped.bytes)
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let pageEnd = (kept + page - 1) / page * page - file.dataStart
    #expect(bytes[..<100_000] == data[..<100_000])
    #expect(bytes[pageEnd...].allSatisfy { $0 == 0 })
    let error = #expect(throws: SafeTensorsError.self) { try mapped.check() }
    #expect(error?.code == .io)
    #expect(
      error?.description.contains("file shrank to \(kept) bytes while bytes up to \(file.dataStart + data.count)")
        == true,
      "\(String(describing: error))")
    #expect(error?.description.contains("tensor 'x'") == true)
    // Bytes past the end are not mapped (a read then says why they cannot be had).
    #expect(try file.map(tensor, at: 200_000, count: 4) == nil)
    let ended = #expect(throws: SafeTensorsError.self) { try file.bytes(of: tensor) }
    #expect(ended?.code == .io)
  }

  @Test(.enabled(if: MappedTensorBytes.isSupported))
  func mappedBytesOfAFileCutInsideTheirLastPageFailTheCheck() throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let (spec, data) = SampleFile.tensor("x", .f32, [64], seed: 6)
    let path = try Self.write([(spec, data)], in: directory)
    let file = try SafeTensorsFile(path: path)
    let tensor = try file.tensor(named: "x")
    let mapped = try #require(try file.map(tensor, at: 0, count: data.count))
    try mapped.check()
    // The page stays mapped, its bytes past the new end read as zeros, and nothing faults.
    #expect(truncate(path, off_t(file.dataStart + 100)) == 0)
    #expect(Array(mapped.bytes[..<100]) == Array(data[..<100]))
    #expect(mapped.bytes[100...].allSatisfy { $0 == 0 })
    let error = #expect(throws: SafeTensorsError.self) { try mapped.check() }
    #expect(error?.code == .io)
    #expect(error?.description.contains("file shrank to \(file.dataStart + 100) bytes") == true)
  }
}
