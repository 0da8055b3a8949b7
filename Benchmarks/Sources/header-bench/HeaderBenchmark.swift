import Foundation
import SafeTensors

/// Times decoding one large header: in memory with ``SafeTensorsHeader/decode(json:)``, split
/// into phases, and by opening a file that starts with it.
struct HeaderBenchmark {
  /// What one run of the benchmark measured.
  struct Result {
    var tensorCount: Int
    var jsonBytes: Int
    /// `SafeTensorsHeader.decode(json:)`, the whole parse and validation.
    var decode = Samples()
    /// `JSONParser.parse` alone: UTF-8 check and building the JSON tree.
    var jsonParse = Samples()
    /// Releasing that tree, which `decode(json:)` also pays for.
    var treeRelease = Samples()
    /// `SafeTensorsHeader(metadata:tensors:)` from the specs: offsets and the name index,
    /// the work `decode(json:)` ends with.
    var construct = Samples()
    /// `SafeTensorsFile(path:)` on a sparse file with this header.
    var open = Samples()
    /// Why `open` was not measured, if it was not.
    var openSkipped: String?
    var sparseFileBytes = 0
  }

  var tensorCount: Int
  var runs: Int
  var directory: String

  /// Builds the header, then times each step `runs` times.
  ///
  /// - Throws: ``SafeTensorsError`` when the header does not round-trip.
  func run() throws -> Result {
    let specs = SyntheticModel.mixtureOfExperts(count: tensorCount)
    let header = try SafeTensorsHeader(metadata: SyntheticModel.metadata, tensors: specs)
    let file = header.encoded()
    var result = Result(tensorCount: header.tensors.count, jsonBytes: file.count - 8)
    // The header is ~10 MB for 100,000 tensors, ~100 bytes an entry; ours are a little
    // longer (long expert names, 12-digit offsets), which only makes the test harder.
    guard (80...160).contains(result.jsonBytes / max(result.tensorCount, 1)) else {
      throw SafeTensorsError(
        .invalidArgument, "the synthetic header takes \(result.jsonBytes / result.tensorCount) bytes a tensor, not ~100"
      )
    }

    try file.withUnsafeBytes { buffer in
      let json = UnsafeRawBufferPointer(rebasing: buffer[8...])
      for run in 0..<runs {
        let decoded = try result.decode.time { () throws(SafeTensorsError) in
          try SafeTensorsHeader.decode(json: json)
        }
        // Checked after the first run, so that run is timed as a one-shot process would see it.
        guard run > 0 || decoded == header else {
          throw SafeTensorsError(.invalidArgument, "the decoded header differs from the one encoded")
        }
      }
      for _ in 0..<runs {
        var tree: JSONValue? = try result.jsonParse.time { () throws(JSONParser.Failure) in try JSONParser.parse(json) }
        result.treeRelease.time { tree = nil }
        precondition(tree == nil)
      }
    }
    for _ in 0..<runs {
      _ = try result.construct.time { () throws(SafeTensorsError) in
        try SafeTensorsHeader(metadata: SyntheticModel.metadata, tensors: specs)
      }
    }
    measureOpen(file: file, dataLength: header.dataLength, into: &result)
    return result
  }

  /// Writes the header followed by a hole as long as the data (nothing is read past the
  /// header), and times opening it.
  private func measureOpen(file: [UInt8], dataLength: Int, into result: inout Result) {
    let path = (directory as NSString).appendingPathComponent("header-\(tensorCount).safetensors")
    defer { try? FileManager.default.removeItem(atPath: path) }
    do {
      guard FileManager.default.createFile(atPath: path, contents: Data(file)) else {
        throw SafeTensorsError(.io, "cannot create the file", file: path)
      }
      let handle = try FileHandle(forWritingAtPath: path).unwrap(path)
      try handle.truncate(atOffset: UInt64(file.count + dataLength))
      try handle.close()
      result.sparseFileBytes = file.count + dataLength
      for _ in 0..<runs {
        let opened = try result.open.time { () throws(SafeTensorsError) in try SafeTensorsFile(path: path) }
        precondition(opened.header.tensors.count == tensorCount)
      }
    } catch {
      result.openSkipped = "could not make a sparse file of \(file.count + dataLength) bytes: \(error)"
    }
  }
}

extension Optional where Wrapped == FileHandle {
  fileprivate func unwrap(_ path: String) throws(SafeTensorsError) -> FileHandle {
    guard let self else { throw SafeTensorsError(.io, "cannot open for writing", file: path) }
    return self
  }
}
