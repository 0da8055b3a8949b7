import Foundation
import Testing

@testable import Pipeline

@Suite("SpillFile")
struct SpillFileTests {
  @Test("records appended and read back in random order return the exact bytes", arguments: SpillCompression.allCases)
  func randomOrderReads(compression: SpillCompression) throws {
    try withTemporaryDirectory { directory in
      let file = try SpillFile(directory: directory, compression: compression, blockLength: 50_000)
      var generator = SpillTestData.Generator(state: 11)
      let weights = SpillTestData.bf16Weights(count: 200_000, seed: 12)
      let random = SpillTestData.randomBytes(count: 400_000, seed: 13)
      var records: [(SpillRecord, [UInt8])] = []
      for index in 0..<120 {
        let length =
          index % 10 == 0 ? Int.random(in: 0...3, using: &generator) : Int.random(in: 0...180_000, using: &generator)
        let start = Int.random(in: 0...(random.count - length), using: &generator)
        let bytes = Array(
          index % 3 == 0
            ? random[start..<start + length] : weights[start % 200_000..<start % 200_000 + min(length, 200_000)])
        let width = [1, 2, 4, 8].randomElement(using: &generator)!
        records.append((try bytes.withUnsafeBytes { try file.append($0, elementWidth: width) }, bytes))
      }
      for (record, bytes) in records.shuffled(using: &generator) {
        #expect(try read(record, from: file) == bytes)
      }
      #expect(file.bytesSpilled == records.reduce(0) { $0 + $1.1.count })
      #expect(file.bytesOnDisk == records.reduce(0) { $0 + $1.0.storedLength })
      #expect(file.bytesOnDisk == Int(try fileSize(file.path)))
      try file.remove()
    }
  }

  @Test("a record larger than a block is split into blocks and still compresses")
  func multiBlockRecord() throws {
    try withTemporaryDirectory { directory in
      let file = try SpillFile(directory: directory, compression: .lz4, blockLength: 16_384)
      let bytes = SpillTestData.bf16Weights(count: 100_000, seed: 14)
      let record = try bytes.withUnsafeBytes { try file.append($0, elementWidth: 2) }
      #expect(record.originalLength == bytes.count)
      #expect(record.storedLength < bytes.count * 9 / 10)
      #expect(try read(record, from: file) == bytes)
    }
  }

  @Test("the file is named spill-n.bin, never .safetensors, and remove() deletes it")
  func namingAndRemoval() throws {
    try withTemporaryDirectory { directory in
      let first = try SpillFile(directory: directory, compression: .lz4)
      let second = try SpillFile(directory: directory, compression: .none)
      for file in [first, second] {
        let name = URL(fileURLWithPath: file.path).lastPathComponent
        #expect(name.wholeMatch(of: /spill-[0-9]+\.bin/) != nil, "\(name)")
        #expect(!name.hasSuffix(".safetensors"))
        #expect(FileManager.default.fileExists(atPath: file.path))
      }
      #expect(first.path != second.path)
      try first.remove()
      try first.remove()
      #expect(!FileManager.default.fileExists(atPath: first.path))
      #expect(FileManager.default.fileExists(atPath: second.path))
    }
  }

  @Test("a spill file that is released without remove() is deleted")
  func releaseDeletes() throws {
    try withTemporaryDirectory { directory in
      var file: SpillFile? = try SpillFile(directory: directory, compression: .lz4)
      let path = file!.path
      _ = try [UInt8](repeating: 1, count: 10).withUnsafeBytes { try file!.append($0, elementWidth: 1) }
      #expect(FileManager.default.fileExists(atPath: path))
      file = nil
      #expect(!FileManager.default.fileExists(atPath: path))
    }
  }

  @Test("a name already taken in the directory is skipped")
  func takenNameIsSkipped() throws {
    try withTemporaryDirectory { directory in
      let probe = try SpillFile(directory: directory, compression: .none)
      let number = Int(URL(fileURLWithPath: probe.path).deletingPathExtension().lastPathComponent.dropFirst(6))!
      for next in number + 1...number + 3 {
        #expect(FileManager.default.createFile(atPath: "\(directory)/spill-\(next).bin", contents: Data([1])))
      }
      let file = try SpillFile(directory: directory, compression: .none)
      #expect(file.path == "\(directory)/spill-\(number + 4).bin")
      #expect(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/spill-\(number + 1).bin")) == Data([1]))
    }
  }

  @Test(
    "a damaged spill file throws an error naming the file and the block's offset", arguments: SpillCompression.allCases)
  func damagedFileThrows(compression: SpillCompression) throws {
    try withTemporaryDirectory { directory in
      let file = try SpillFile(directory: directory, compression: compression, blockLength: 4096)
      let first = SpillTestData.bf16Weights(count: 10_000, seed: 15)
      let second = SpillTestData.bf16Weights(count: 10_000, seed: 16)
      let firstRecord = try first.withUnsafeBytes { try file.append($0, elementWidth: 2) }
      let secondRecord = try second.withUnsafeBytes { try file.append($0, elementWidth: 2) }
      var contents = try Data(contentsOf: URL(fileURLWithPath: file.path))
      let damagedAt = secondRecord.offset + secondRecord.storedLength - 100
      contents[damagedAt] ^= 0x10
      try contents.write(to: URL(fileURLWithPath: file.path))
      #expect(try read(firstRecord, from: file) == first)
      let error = #expect(throws: SpillError.self) { try read(secondRecord, from: file) }
      #expect(error?.code == .corruptBlock)
      #expect(error?.file == file.path)
      let blockOffset = try #require(error?.offset)
      #expect(blockOffset > secondRecord.offset && blockOffset <= damagedAt, "the last block of the second record")
      #expect(error?.description.hasPrefix("\(file.path) at offset \(blockOffset): ") == true)
    }
  }

  @Test("a truncated spill file throws instead of returning short data")
  func truncatedFileThrows() throws {
    try withTemporaryDirectory { directory in
      let file = try SpillFile(directory: directory, compression: .lz4)
      let bytes = SpillTestData.bf16Weights(count: 10_000, seed: 17)
      let record = try bytes.withUnsafeBytes { try file.append($0, elementWidth: 2) }
      #expect(truncate(file.path, off_t(record.storedLength - 1)) == 0)
      let error = #expect(throws: SpillError.self) { try read(record, from: file) }
      #expect(error?.code == .corruptBlock)
      #expect(error?.file == file.path)
    }
  }

  @Test("creating a spill file in a missing directory throws an io error naming the path")
  func missingDirectoryThrows() throws {
    let directory = "/nonexistent-\(UUID().uuidString)"
    let error = #expect(throws: SpillError.self) { try SpillFile(directory: directory, compression: .lz4) }
    #expect(error?.code == .io)
    #expect(error?.file?.hasPrefix("\(directory)/spill-") == true)
    #expect(error?.message.contains("No such file or directory") == true)
    // The system call and its errno are kept, and a PipelineError caused by it reports the errno.
    #expect(error?.systemCall == PipelineError.SystemCallError("open", .noSuchFileOrDirectory))
    #expect(PipelineError(.io, "spilling", cause: error).errno == ENOENT)
  }

  private func read(_ record: SpillRecord, from file: SpillFile) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: record.originalLength)
    try bytes.withUnsafeMutableBytes { try file.read(record, into: $0) }
    return bytes
  }
}
