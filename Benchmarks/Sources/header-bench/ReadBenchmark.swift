import Foundation
import SafeTensors

/// Compares reading every tensor of a large file by range (``SafeTensorsFile/forEachChunk``)
/// with `cat FILE > /dev/null`, both from the page cache, in alternating rounds of one run.
struct ReadBenchmark {
  /// What one run of the benchmark measured.
  struct Result {
    var fileBytes: Int
    var dataBytes: Int
    var tensorCount: Int
    var writeSeconds: Double
    var cat = Samples()
    /// One entry per chunk size, in the order they were asked for.
    var ranges: [(chunkSize: Int, samples: Samples)]

    /// `cat`'s speed in GB/s for a duration.
    func catSpeed(_ seconds: Double) -> Double { Double(fileBytes) / seconds / 1e9 }
    /// The range reads' speed in GB/s for a duration.
    func rangeSpeed(_ seconds: Double) -> Double { Double(dataBytes) / seconds / 1e9 }
    /// Best range-read speed over best `cat` speed for the chunk size at `index`.
    func ratio(_ index: Int) -> Double { rangeSpeed(ranges[index].samples.best) / catSpeed(cat.best) }
  }

  var bytes: Int
  var rounds: Int
  var chunkSizes: [Int]
  var directory: String

  /// Writes the file, warms the page cache with one read of each kind, then runs `rounds`
  /// rounds, alternating which kind goes first. Removes the file before returning.
  ///
  /// - Throws: ``SafeTensorsError`` when writing or reading fails, or a read returns other
  ///   bytes than were written; an error when `cat` fails.
  func run() throws -> Result {
    precondition(chunkSizes.allSatisfy { $0 % DataPattern.sampleStride == 0 }, "chunk sizes must be whole pages")
    let path = (directory as NSString).appendingPathComponent("read-\(getpid()).safetensors")
    defer { try? FileManager.default.removeItem(atPath: path) }

    let header = try SafeTensorsHeader(
      metadata: ["format": "pt"], tensors: SyntheticModel.denseLayers(atLeast: bytes))
    let writeSeconds = try ContinuousClock().measure { try Self.write(header, to: path) }.seconds
    let file = try SafeTensorsFile(path: path)
    let expected = DataPattern.expectedSample(of: file.header.tensors)
    var result = Result(
      fileBytes: file.dataStart + file.header.dataLength, dataBytes: file.header.dataLength,
      tensorCount: file.header.tensors.count, writeSeconds: writeSeconds,
      ranges: chunkSizes.map { ($0, Samples()) })

    // Warm-up, not recorded: brings the whole file into the page cache.
    try Self.cat(path)
    try Self.readRanges(of: file, chunkSize: chunkSizes[0], expecting: expected)

    for round in 0..<rounds {
      let catFirst = round % 2 == 0
      if catFirst { try result.cat.time { try Self.cat(path) } }
      for index in chunkSizes.indices {
        try result.ranges[index].samples.time {
          try Self.readRanges(of: file, chunkSize: chunkSizes[index], expecting: expected)
        }
      }
      if !catFirst { try result.cat.time { try Self.cat(path) } }
    }
    return result
  }

  /// Writes `header` and the pattern bytes in 8 MiB pieces, then fsyncs (``SafeTensorsWriter``).
  private static func write(_ header: SafeTensorsHeader, to path: String) throws(SafeTensorsError) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 20, alignment: 64)
    defer { buffer.deallocate() }
    var writer = try SafeTensorsWriter(path: path, header: header)
    var offset = 0
    while offset < header.dataLength {
      let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(buffer.count, header.dataLength - offset)])
      DataPattern.fill(piece, from: offset)
      try writer.write(UnsafeRawBufferPointer(piece))
      offset += piece.count
    }
    try writer.finish()
  }

  /// Reads every tensor front to back in `chunkSize` pieces, sampling a word per page, and
  /// checks the samples against the pattern.
  private static func readRanges(of file: SafeTensorsFile, chunkSize: Int, expecting expected: UInt64) throws {
    var sum: UInt64 = 0
    for tensor in file.header.tensors {
      try file.forEachChunk(of: tensor, chunkSize: chunkSize) { piece in DataPattern.sample(piece, into: &sum) }
    }
    guard sum == expected else {
      throw SafeTensorsError(
        .io, "read bytes differ from those written (sample \(sum), expected \(expected))", file: file.path)
    }
  }

  /// Runs `cat FILE > /dev/null` through `/bin/sh`, as a user would type it.
  private static func cat(_ path: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "cat \"$1\" > /dev/null", "sh", path]
    try process.run()
    process.waitUntilExit()
    guard process.terminationReason == .exit, process.terminationStatus == 0 else {
      throw SafeTensorsError(.io, "cat failed with status \(process.terminationStatus)", file: path)
    }
  }
}
