import Foundation
import SafeTensors
import Testing

@Suite struct TensorReadTests {
  @Test(arguments: [1, 7, 64, 4096, 1 << 20])
  func readingInChunksGivesTheTensorsBytesInOrder(chunkSize: Int) throws {
    let directory = try TestFiles.scratchDirectory()
    defer { TestFiles.cleanUp(directory) }
    let tensors = [SampleFile.tensor("x", .bf16, [33, 31], seed: 9), SampleFile.tensor("y", .u8, [5], seed: 10)]
    let path = directory.appendingPathComponent("t.safetensors").path
    try SafeTensorsWriter.write(
      path: path, header: SafeTensorsHeader(metadata: nil, tensors: tensors.map(\.0)),
      data: Dictionary(uniqueKeysWithValues: tensors.map { ($0.0.name, $0.1) }))
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
    let path = directory.appendingPathComponent("t.safetensors").path
    try SafeTensorsWriter.write(
      path: path, header: SafeTensorsHeader(metadata: nil, tensors: [spec]), data: ["x": data])
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
    let url = directory.appendingPathComponent("t.safetensors")
    try SafeTensorsWriter.write(
      path: url.path, header: SafeTensorsHeader(metadata: nil, tensors: [spec]), data: ["x": data])
    let file = try SafeTensorsFile(path: url.path)
    let handle = try FileHandle(forWritingTo: url)
    try handle.truncate(atOffset: 100)
    try handle.close()
    let error = #expect(throws: SafeTensorsError.self) { try file.bytes(of: file.tensor(named: "x")) }
    #expect(error?.code == .io)
  }
}
